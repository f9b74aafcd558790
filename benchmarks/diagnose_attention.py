"""Does a phantom-trained model look at the lesions? Figures for docs/attention-diagnosis.md.

    python benchmarks/diagnose_attention.py RUN PHANTOM [--limit N]

PHANTOM is a phantom folder the run never trained on (`cxr-attention phantom OUT --seed S` with a
new seed). For its test split the script prints:

1. Lesion reliance, per localized finding: the test AUC as usual, and the AUC when every positive
   film is replaced by its lesion-free twin (the same patient, view, exposure and noise, drawn
   without the lesion; `render_case(..., lesions=False)`). A model that reads the lesion falls to
   about 0.5 on the twins; one that scores from global cues (view, heart size, co-occurring
   findings) keeps its AUC.
2. Per attention gate: the map size, how much the map varies within an image (its range, max - min,
   and spread, the standard deviation), and
   how much of its variation across images is one fixed picture shared by all films (a positional
   prior: 1.0 = the gate ignores the image), then the pointing game against the random control
   and the gate's mean value inside the lesion against outside it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from cxr_attention.core.data.phantom import LOCALIZED, plan_dataset, render_case
from cxr_attention.core.data.preprocess import config_input, model_view
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.data.sources import open_dataset
from cxr_attention.core.explain.localize_run import localize_run, mask_in_view, truth_cases
from cxr_attention.core.metrics.auc import roc_auc
from cxr_attention.core.models.checkpoint import load_checkpoint


def score(model, views: list[np.ndarray], batch: int = 64) -> tuple[np.ndarray, dict]:
    """Sigmoid scores (n, L) and every gate's maps {name: (n, h, w)} for uint8 model views."""
    probs, maps = [], {}
    with torch.inference_mode():
        for start in range(0, len(views), batch):
            x = config_input(np.stack(views[start : start + batch]), model.config)
            out = model.forward_with_maps(x)
            probs.append(torch.sigmoid(out.logits).numpy())
            for name, m in out.maps.items():
                maps.setdefault(name, []).append(m[:, 0].numpy())
    return np.concatenate(probs), {k: np.concatenate(v) for k, v in maps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("phantom")
    parser.add_argument("--limit", type=int, default=None, help="first N test films")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    checkpoint = load_checkpoint(Path(args.run) / "checkpoint.pt")
    model, size = checkpoint.model, checkpoint.config.image_size
    labels = list(checkpoint.labels)
    manifest = json.loads((Path(args.phantom) / "PHANTOM.json").read_text())
    setting = manifest.get("difficulty", "research")  # phantoms before 1.1 were all "research"
    plans = {p.image_id: p for p in plan_dataset(manifest["n"], manifest["seed"])}
    index = open_dataset(args.phantom)
    frame = index.split("test")
    if args.limit:
        frame = frame.iloc[: args.limit]
    targets = index.targets(frame)
    views = [model_view(load_radiograph(p).pixels, size) for p in frame["path"]]
    twins = [
        model_view(
            render_case(
                plans[i], manifest["size"], manifest["seed"], lesions=False, difficulty=setting
            ).image,
            size,
        )
        if targets[k].any()
        else views[k]
        for k, i in enumerate(frame["image_id"])
    ]
    scores, maps = score(model, views)
    twin_scores, _ = score(model, twins)

    figures: dict = {"run": str(args.run), "n_test": len(frame), "reliance": {}, "gates": {}}
    print(f"{args.run}: {len(frame)} test films of {args.phantom}")
    print(f"{'finding':<20} {'AUC':>6} {'AUC twins':>10}  (twins: positives drawn without lesion)")
    for k, label in enumerate(labels):
        y = targets[:, k]
        if y.sum() == 0 or y.sum() == len(y):
            continue
        auc = roc_auc(y, scores[:, k])
        twin = np.where(y == 1, twin_scores[:, k], scores[:, k])
        auc_twin = roc_auc(y, twin)
        figures["reliance"][label] = {"auc": auc, "auc_twins": auc_twin, "n_pos": int(y.sum())}
        marker = (
            "" if label in LOCALIZED else "  (diffuse: its painted signs removed, anatomy kept)"
        )
        print(f"{label:<20} {auc:>6.3f} {auc_twin:>10.3f}{marker}")

    cases, _ = truth_cases(index, frame, labels)
    rows = {image_id: k for k, image_id in enumerate(frame["image_id"])}
    for name, m in maps.items():
        spread = float(m.std(axis=(1, 2)).mean())
        contrast = float((m.max(axis=(1, 2)) - m.min(axis=(1, 2))).mean())
        shared = m.mean(axis=0, keepdims=True)
        total = float(((m - m.mean()) ** 2).sum())
        prior = float(((shared - m.mean()) ** 2).sum() * len(m) / max(total, 1e-12))
        inside, outside = [], []
        for case in cases:
            gate = torch.from_numpy(m[rows[case.image_id]])[None, None]
            up = torch.nn.functional.interpolate(gate, size=(size, size), mode="bilinear")[0, 0]
            for label in case.labels:
                mask = mask_in_view(case.masks[label], size)
                inside.append(float(up.numpy()[mask].mean()))
                outside.append(float(up.numpy()[~mask].mean()))
        report = localize_run(args.run, data=args.phantom, method="attention", stage=name)
        control = json.loads((Path(args.run) / "localization_random.json").read_text())
        g = {
            "map": list(m.shape[1:]),
            "spread": spread,
            "range": contrast,
            "positional_prior_share": prior,
            "pointing_game": report["overall"]["pointing_game"],
            "random_pointing_game": control["overall"]["pointing_game"],
            "mean_in_lesion": float(np.mean(inside)) if inside else float("nan"),
            "mean_outside": float(np.mean(outside)) if outside else float("nan"),
        }
        figures["gates"][name] = g
        print(
            f"gate {name}: {g['map'][0]}x{g['map'][1]}, range {contrast:.3f}, spread {spread:.3f}, "
            f"shared picture "
            f"{prior:.0%} of the variation, pointing game {g['pointing_game']:.3f} vs random "
            f"{g['random_pointing_game']:.3f}, mean in lesion {g['mean_in_lesion']:.3f} vs "
            f"outside {g['mean_outside']:.3f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
