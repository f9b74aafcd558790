"""Attention overhead: forward latency and parameters with and without spatial attention.

For each paper backbone at 224 and 512 px, batch 1 and 32, times the baseline and the attention
model alternately (so drift in machine load hits both alike) and prints the median latency of each
and the overhead. Goal: under 3 % latency and under 0.1 % parameters.

    python benchmarks/bench_attention_overhead.py [--sizes 224 512] [--batches 1 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from cxr_attention.core.labels import ALL14
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig
from cxr_attention.core.models.registry import PAPER_BACKBONES


def timed(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(PAPER_BACKBONES))
    parser.add_argument("--sizes", nargs="+", type=int, default=[224, 512])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stages", nargs="+", type=int, default=[-1])
    args = parser.parse_args()

    print(
        f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(
        f"{'backbone':<18}{'px':>5}{'batch':>6}{'base ms':>10}{'attn ms':>10}{'latency +%':>11}{'params +%':>11}"
    )
    for name in args.backbones:
        base = AttentionClassifier(ModelConfig(name, ALL14)).eval()
        attn = AttentionClassifier(
            ModelConfig(name, ALL14, attention=True, attention_stages=tuple(args.stages))
        ).eval()
        n_params = sum(p.numel() for p in base.parameters())
        param_overhead = 100 * attn.attention_parameters() / n_params
        for size in args.sizes:
            for batch in args.batches:
                x = torch.randn(batch, 3, size, size)
                with torch.inference_mode():
                    timed(base, x), timed(attn, x)  # warm-up
                    t_base, t_attn = [], []
                    for _ in range(args.repeats):
                        t_base.append(timed(base, x))
                        t_attn.append(timed(attn, x))
                mb, ma = statistics.median(t_base), statistics.median(t_attn)
                print(
                    f"{name:<18}{size:>5}{batch:>6}{mb * 1e3:>10.1f}{ma * 1e3:>10.1f}"
                    f"{100 * (ma - mb) / mb:>+11.2f}{param_overhead:>11.4f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
