"""`cxr-attention models`: the backbone table (parameters, attention overhead, GFLOPs, map sizes)."""

from __future__ import annotations

import argparse

from core.models.registry import PAPER_BACKBONES, describe_backbone
from core.models.summary import BackboneCost, backbone_cost


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


COLUMNS = (
    ("backbone", "<"),
    ("--backbone", "<"),
    ("params", ">"),
    ("attn params", ">"),
    ("overhead", ">"),
    ("GFLOPs@224", ">"),
    ("attn MFLOPs", ">"),
    ("maps@224", "<"),
    ("maps@512", "<"),
)


def table_row(name: str, cost: BackboneCost) -> list[str]:
    """One backbone's cells, in `COLUMNS` order: its display name beside the name to type."""
    sizes = {s: ", ".join(f"{h}x{w}" for h, w in m.values()) for s, m in cost.feature_maps.items()}
    return [
        describe_backbone(name).title,
        name,
        f"{cost.parameters / 1e6:.2f}M",
        f"{cost.attention_parameters:,d}",
        f"{cost.parameter_overhead:.4f}%",
        f"{cost.gflops:.2f}",
        f"{cost.attention_gflops * 1e3:.3f}",
        sizes[224],
        sizes[512],
    ]


def format_table(rows: list[list[str]]) -> list[str]:
    """Header, rule and rows, each column as wide as its widest cell."""
    titles = [title for title, _ in COLUMNS]
    widths = [max(len(cell) for cell in column) for column in zip(titles, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            f"{cell:{align}{width}}"
            for cell, (_, align), width in zip(cells, COLUMNS, widths, strict=True)
        ).rstrip()

    header = line(titles)
    return [header, "-" * len(header), *(line(row) for row in rows)]


def run(args: argparse.Namespace) -> int:
    rows = [
        table_row(name, backbone_cost(name, tuple(args.attention_stages)))
        for name in args.backbones
    ]
    print("\n".join(format_table(rows)))
    print(
        "\n--backbone: the name to pass to `fit --backbone`; params: baseline classifier with 14 "
        "outputs;\nFLOPs: 1 multiply-add = 2 FLOPs, one 224 px image (gate convolution only); "
        "maps: spatial attention\nmap size at each gated stage."
    )
    return 0
