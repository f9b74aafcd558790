"""What a finer attention map costs: training-step time for the three ways to get >= 8 x 8 maps.

At 128 px (the demo zoo's input) the final feature map of a stride-32 backbone is 4 x 4. Three ways
to a map of at least 8 x 8, each timed against that baseline in the same run (forward and backward
of a batch, alternating the variants so that drift in machine load hits all alike):

- ``os16``: timm's `output_stride=16` (the last stage dilated instead of strided): 8 x 8 final map;
- ``256px``: a 256 px input at stride 32: 8 x 8 final map, 4x the pixels;
- ``gate3``: the paper preset's gate after stage 3 (stride 16): an 8 x 8 gate map, final map 4 x 4.

    python benchmarks/bench_map_resolution.py [--backbones mobilenetv2_100 efficientnet_b0]
        [--batch 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from cxr_attention.core.labels import ALL14
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig

VARIANTS = {  # name -> (ModelConfig options, input px)
    "stride32": ({}, 128),
    "os16": ({"output_stride": 16}, 128),
    "256px": ({}, 256),
    "gate3": ({"attention": True, "attention_stages": (-2, -1)}, 128),
}


def step_seconds(model: AttentionClassifier, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x).sum().backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["mobilenetv2_100", "efficientnet_b0"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        f"# {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"batch {args.batch}, forward + backward, median of {args.repeats}"
    )
    print(f"{'backbone':<18}{'variant':<10}{'map':>7}{'s/step':>9}{'x stride32':>12}")
    for backbone in args.backbones:
        models, inputs, maps = {}, {}, {}
        for name, (options, size) in VARIANTS.items():
            model = AttentionClassifier(ModelConfig(backbone, ALL14, image_size=size, **options))
            models[name] = model.train()
            inputs[name] = torch.randn(args.batch, 3, size, size)
            with torch.no_grad():
                out = (
                    model.eval().forward_with_maps(inputs[name][:1])
                    if model.has_attention
                    else None
                )
                final = model.features(inputs[name][:1]).shape[-1]
            model.train()
            finest = max([final, *(m.shape[-1] for m in (out.maps.values() if out else []))])
            maps[name] = f"{finest}x{finest}"
            step_seconds(model, inputs[name])  # warm-up
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(args.repeats):
            for name in VARIANTS:
                times[name].append(step_seconds(models[name], inputs[name]))
        base = statistics.median(times["stride32"])
        for name in VARIANTS:
            median = statistics.median(times[name])
            print(f"{backbone:<18}{name:<10}{maps[name]:>7}{median:>9.2f}{median / base:>11.2f}x")


if __name__ == "__main__":
    main()
