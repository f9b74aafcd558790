"""`cxr-attention inspect CKPT`: a checkpoint's metadata, readably (or as JSON)."""

from __future__ import annotations

import argparse
import json

from core.models.checkpoint import read_checkpoint_data
from core.models.registry import describe_backbone


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("inspect", help="print a checkpoint's metadata")
    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint.pt (or a run folder)")
    parser.add_argument("--json", action="store_true", help="print the metadata as JSON")
    parser.set_defaults(func=run)


def checkpoint_metadata(data: dict) -> dict:
    """Everything in a checkpoint except the weights, plus their count; the OOD description's
    per-layer tensors are summarised as their shapes."""
    meta = {k: v for k, v in data.items() if k != "state_dict"}
    meta["n_parameters"] = int(sum(t.numel() for t in data["state_dict"].values()))
    if isinstance(meta.get("ood"), dict):
        ood = dict(meta["ood"])
        ood["layers"] = [
            {k: list(v.shape) if hasattr(v, "shape") else v for k, v in layer.items()}
            for layer in ood.get("layers") or []
        ]
        meta["ood"] = ood
    return meta


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    path = Path(args.checkpoint)
    if path.is_dir() and (path / "checkpoint.pt").is_file():
        path = path / "checkpoint.pt"
    meta = checkpoint_metadata(read_checkpoint_data(path))
    if args.json:
        print(json.dumps(meta, indent=2, default=str))
        return 0
    model, training = meta["model"], meta.get("training") or {}
    data = training.get("data") or {}
    stages = ", ".join(str(s) for s in model.get("attention_stages", ()))
    lines = [
        f"checkpoint       {path}",
        f"format           {meta['format']} v{meta['format_version']}, "
        f"cxr-attention {meta.get('package_version', '?')}, created {meta.get('created', '?')}",
        f"backbone         {describe_backbone(model['backbone']).title} ({model['backbone']}), "
        f"{meta['n_parameters'] / 1e6:.2f}M parameters",
        f"attention        {'spatial, stages ' + stages if model['attention'] else 'none (baseline)'}",
        f"input            {model['image_size']} px, {model['in_chans']} channel(s), "
        f"mean {_fmt(model['mean'])}, std {_fmt(model['std'])}",
        f"labels ({len(model['labels'])})      {', '.join(model['labels'])}",
    ]
    if data:
        source = "synthetic phantom" if data.get("source") == "phantom" else data.get("source", "?")
        lines.append(
            f"trained on       {source} at {data.get('root', '?')} "
            f"(label set {data.get('label_set', '?')}, fingerprint {str(data.get('fingerprint', '?'))[:12]})"
        )
    if training:
        best = training.get("best_val_macro_auc")
        best_text = f"{best:.4f}" if isinstance(best, float) else "?"
        lines.append(
            f"training         {training.get('epochs', '?')} epochs, best epoch "
            f"{training.get('best_epoch', '?')}, validation macro AUC {best_text}, "
            f"seed {training.get('seed', '?')}"
        )
        pretrained = training.get("pretrained")
        lines.append(f"pretrained       {pretrained or 'no (random initialisation)'}")
        thresholds = training.get("thresholds") or {}
        if thresholds:
            lines.append(
                "thresholds       (Youden's J on validation) "
                + ", ".join(
                    f"{k} {v.get('youden', float('nan')):.3f}" for k, v in thresholds.items()
                )
            )
    lines += trust_lines(meta)
    print("\n".join(lines))
    return 0


def trust_lines(meta: dict) -> list[str]:
    """Calibration and OOD description, or that the checkpoint predates them."""
    calibration, ood = meta.get("calibration"), meta.get("ood")
    if isinstance(calibration, dict):
        temps = calibration.get("temperature") or {}
        low, high = (min(temps.values()), max(temps.values())) if temps else (1.0, 1.0)
        line = f"calibration      temperature scaling per label (T {low:.2f} to {high:.2f})"
        if "ece_before" in calibration:
            line += (
                f", validation ECE {calibration['ece_before']:.4f} -> "
                f"{calibration['ece_after']:.4f}"
            )
        lines = [line]
    else:
        lines = ["calibration      none (raw sigmoid probabilities)"]
    if isinstance(ood, dict):
        names = [layer.get("name", "?") for layer in ood.get("layers") or []]
        lines.append(
            f"OOD warning      {ood.get('method', '?')} over {', '.join(names)}; threshold "
            f"{ood.get('threshold', float('nan')):.3f} passes {100 * ood.get('quantile', 0):.1f}% "
            f"of validation films (fitted on {ood.get('n_train', '?')} training films)"
        )
    else:
        lines.append("OOD warning      none (this checkpoint does not describe its training films)")
    return lines


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"
