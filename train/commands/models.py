"""`cxr-attention models`: the backbone table (parameters, attention overhead, GFLOPs, map sizes)."""

from __future__ import annotations

import argparse

from core.models.registry import PAPER_BACKBONES, describe_backbone
from core.models.summary import backbone_cost


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models", help="table of backbones with and without spatial attention"
    )
    parser.add_argument(
        "--backbones",
        nargs="+",
        default=list(PAPER_BACKBONES),
        metavar="NAME",
        help="timm model names (default: the paper's four)",
    )
    parser.add_argument(
        "--attention-stages",
        nargs="+",
        type=int,
        default=[-1],
        metavar="I",
        help="feature stages gated, negative from the end (default: -1, the final stage)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    header = (
        f"{'backbone':<18} {'params':>9} {'attn params':>11} {'overhead':>9} "
        f"{'GFLOPs@224':>10} {'attn MFLOPs':>11}  {'maps@224':<14} {'maps@512':<14}"
    )
    print(header)
    print("-" * len(header))
    for name in args.backbones:
        cost = backbone_cost(name, tuple(args.attention_stages))
        sizes = {
            s: ", ".join(f"{h}x{w}" for h, w in m.values()) for s, m in cost.feature_maps.items()
        }
        print(
            f"{describe_backbone(name).title:<18} {cost.parameters / 1e6:>8.2f}M "
            f"{cost.attention_parameters:>11,d} {cost.parameter_overhead:>8.4f}% "
            f"{cost.gflops:>10.2f} {cost.attention_gflops * 1e3:>11.3f}  {sizes[224]:<14} {sizes[512]:<14}"
        )
    print(
        "\nparams: baseline classifier with 14 outputs; FLOPs: 1 multiply-add = 2 FLOPs, one "
        "224 px image (gate convolution only);\nmaps: spatial attention map size at each gated stage."
    )
    return 0
