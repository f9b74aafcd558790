"""`cxr-attention inspect CKPT`: a checkpoint's metadata, readably (or as JSON)."""

from __future__ import annotations

import argparse
import json

from cxr_attention.core.errors import CheckpointError, ConfigError
from cxr_attention.core.models.checkpoint import read_checkpoint_data, recorded_lung_weight
from cxr_attention.core.models.classifier import ModelConfig
from cxr_attention.core.models.kinds import KIND_TITLES
from cxr_attention.core.models.registry import describe_backbone


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("inspect", help="print a checkpoint's metadata")
    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint.pt (or a run folder)")
    parser.add_argument("--json", action="store_true", help="print the metadata as JSON")
    parser.set_defaults(func=run)


def checkpoint_metadata(data: dict) -> dict:
    """Everything in a checkpoint except the weights, plus their count; the model config with
    every field (a checkpoint from before a field existed shows its default: attention kind
    "spatial", output stride 32); the OOD description's per-layer tensors as their shapes."""
    meta = {k: v for k, v in data.items() if k != "state_dict"}
    try:
        meta["model"] = ModelConfig.from_dict(data["model"]).to_dict()
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"invalid model config ({exc})") from None
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
    lines = [
        f"checkpoint       {path}",
        f"format           {meta['format']} v{meta['format_version']}, "
        f"cxr-attention {meta.get('package_version', '?')}, created {meta.get('created', '?')}",
        f"backbone         {describe_backbone(model['backbone']).title} ({model['backbone']}), "
        f"{meta['n_parameters'] / 1e6:.2f}M parameters",
        *attention_lines(ModelConfig.from_dict(model)),
        f"input            {model['image_size']} px, {model['in_chans']} channel(s), "
        f"mean {_fmt(model['mean'])}, std {_fmt(model['std'])}",
        f"labels ({len(model['labels'])})      {', '.join(model['labels'])}",
    ]
    if data:
        source = "synthetic phantom" if data.get("source") == "phantom" else data.get("source", "?")
        lines.append(
            f"trained on       {source} at {data.get('table') or data.get('root', '?')} "
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
        lines += lung_lines(model.get("lung_prior", "none"), recorded_lung_weight(training, path))
        turn = training.get("map_equivariance")
        if turn:
            lines.append(
                f"class maps       asked to turn with the film (--map-equivariance {turn:g})"
            )
        pretrained = training.get("pretrained")
        lines.append(f"pretrained       {pretrained or 'no (random initialisation)'}")
        if isinstance(training.get("start"), dict):
            lines += start_lines(training["start"])
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


def lung_lines(prior: str, weight: float) -> list[str]:
    """What of the film the model reads, and whether training held its maps inside the lungs."""
    sees = {
        "mask": "the model sees the film's lung fields alone, the rest blanked (--lung-prior mask)",
        "crop": "the model sees the box around the film's lung fields (--lung-prior crop)",
    }
    said = [sees[prior]] if prior in sees else []
    if weight > 0:
        said.append(
            f"training held its maps inside the lung fields (--lung-weight {weight:g}: gates, class maps, "
            "a linear head's final-stage Grad-CAM)"
        )
    return [f"{'lung fields' if i == 0 else '':<17}{text}" for i, text in enumerate(said)]


def start_lines(start: dict) -> list[str]:
    """Where a fine-tuned model started (`fit --pretrained RUN`): the model, what it learnt on,
    and what was taken from it."""
    trained_on = (start.get("trained_on") or {}).get("title") or "?"
    auc = start.get("best_val_macro_auc")
    auc_text = f", validation macro AUC {auc:.3f}" if isinstance(auc, float) else ""
    return [
        f"started from     {start.get('from', '?')} ({start.get('variant', '?')}: "
        f"{', '.join(start.get('labels') or [])} at {start.get('image_size', '?')} px, on "
        f"{trained_on}{auc_text})",
        f"                 took {', '.join(start.get('took') or [])}; left "
        f"{', '.join(start.get('left') or [])}; fresh: {', '.join(start.get('fresh') or [])}",
    ]


def attention_lines(config: ModelConfig) -> list[str]:
    """The attention kind, where it sits, its maps (per label or shared, their sizes at the
    model's input size) and the output stride."""
    size = config.image_size
    shapes, last_stage = map_shapes(config)
    final = shapes.pop("final", None)
    at = f" at {size} px"

    def cells(hw: tuple[int, int] | None) -> str:
        return "?" if hw is None else f"{hw[0]}x{hw[1]}"

    dilated = " (last stage dilated)" if config.output_stride < 32 else ""
    output_stride, ends = config.output_stride, ""
    if config.head_stage != -1:
        ends = f", network ends at {last_stage or '?'} (head stage {config.head_stage})"
        output_stride = size // final[1] if final else "?"
    stride = (
        f"output stride    {output_stride}{dilated}{ends}: final feature map {cells(final)}{at}"
    )
    if config.kind is None:
        return ["attention        none (baseline)", stride]
    title = KIND_TITLES[config.kind]
    if config.kind == "class":
        head = (
            f"attention        {title}, in the head (temperature {config.attention_temperature:g}"
            f"{' = max pooling' if config.attention_temperature >= 99 else ''}, lambda "
            f"{config.attention_lambda:g})"
        )
        maps = f"attention maps   one per label ({len(config.labels)}): {cells(final)}{at}"
        return [head, maps, stride]
    stages = ", ".join(str(s) for s in config.attention_stages)
    names = ", ".join(shapes) or "?"
    options = [f"{config.attention_kernel}x{config.attention_kernel} convolution"]
    if config.attention_normalise:
        options.append("mean-normalised")
    if config.attention_pool != "maxmean":
        options.append(f"{config.attention_pool} pooling")
    gate = f"attention        {title}, after {names} (stages {stages}; {', '.join(options)})"
    per_gate = ", ".join(f"{name} {cells(hw)}" for name, hw in shapes.items()) or "?"
    maps = f"attention maps   one for all labels, per gate: {per_gate}{at}"
    return [gate, maps, stride]


def map_shapes(config: ModelConfig) -> tuple[dict[str, tuple[int, int]], str | None]:
    """(h, w) of each attention map (a class head's under "class") and of the final feature map
    ("final") at the model's input size, and the name of the last stage kept, from the model
    built on the meta device (no weights); ({}, None) when this timm cannot build the backbone."""
    import torch

    from cxr_attention.core.models.classifier import AttentionClassifier

    try:
        with torch.device("meta"):
            model = AttentionClassifier(config).eval()
    except ConfigError:
        return {}, None
    x = torch.zeros(1, config.in_chans, config.image_size, config.image_size, device="meta")
    with torch.no_grad():
        out = model.forward_with_maps(x)
        final = tuple(model.features(x).shape[-2:])
    shapes = {name: tuple(m.shape[-2:]) for name, m in out.maps.items()}
    return shapes | {"final": final}, model.stages[-1].name


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
