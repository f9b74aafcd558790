"""`cxr-attention models`: the backbone table, one row per backbone and attention kind (parameters,
attention overhead, GFLOPs at output stride 32 and 16, map sizes at 224 and 128 px)."""

from __future__ import annotations

import argparse

from cxr_attention.core.models.kinds import ATTENTION_KINDS
from cxr_attention.core.models.registry import PAPER_BACKBONES, describe_backbone
from cxr_attention.core.models.summary import BackboneCost, VariantCost, backbone_cost


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="table of backbones with each attention kind: size, cost, map sizes",
        description="Backbones with each attention kind (spatial, cbam, class): parameters, "
        "GFLOPs at output stride 32 and 16, and the attention map sizes at 224 and 128 px. "
        "Counted on PyTorch's meta device: nothing is initialised, a few seconds in all.",
    )
    parser.add_argument(
        "--backbones",
        nargs="+",
        default=list(PAPER_BACKBONES),
        metavar="NAME",
        help="timm model names (default: the paper's four)",
    )
    parser.add_argument(
        "--kinds",
        nargs="+",
        choices=ATTENTION_KINDS,
        default=list(ATTENTION_KINDS),
        metavar="KIND",
        help=f"attention kinds, one row each besides the baseline ({', '.join(ATTENTION_KINDS)}; "
        "default: all)",
    )
    parser.add_argument(
        "--attention-stages",
        nargs="+",
        type=int,
        default=[-1],
        metavar="I",
        help="stages the spatial and cbam gates follow, negative from the end (default: -1, the "
        "final stage); the class head always reads the final feature map",
    )
    parser.set_defaults(func=run)


COLUMNS = (
    ("backbone", "<"),
    ("--backbone", "<"),
    ("attention", "<"),
    ("params", ">"),
    ("attn params", ">"),
    ("overhead", ">"),
    ("GFLOPs@224", ">"),
    ("attn MFLOPs", ">"),
    ("os16 GFLOPs", ">"),
    ("maps@224 os32/16", "<"),
    ("maps@128 os32/16", "<"),
)
NA = "n/a"  # a stride the backbone cannot take (written "-" in a pair of map sizes)


def _maps(variant: VariantCost | None, size: int) -> str:
    if variant is None:
        return "-"
    return ",".join(f"{h}x{w}" for h, w in variant.maps[size].values())


def table_rows(name: str, cost: BackboneCost, kinds: tuple[str, ...]) -> list[list[str]]:
    """One backbone's rows in `COLUMNS` order, the baseline ("none") first, then each kind."""
    rows = []
    for kind in (None, *kinds):
        ours, finer = cost.variants[(kind, 32)], cost.variant(kind, 16)
        attention = kind is not None
        rows.append(
            [
                describe_backbone(name).title,
                name,
                kind or "none",
                f"{ours.parameters / 1e6:.2f}M",
                f"{ours.attention_parameters:,d}" if attention else "-",
                f"{cost.parameter_overhead(kind):.4f}%" if attention else "-",
                f"{ours.gflops:.2f}",
                f"{cost.attention_gflops(kind) * 1e3:.3f}" if attention else "-",
                NA if finer is None else f"{finer.gflops:.2f}",
                *(f"{_maps(ours, s)}/{_maps(finer, s)}" for s in (224, 128)),
            ]
        )
    return rows


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


FOOTNOTE = """\
--backbone: the name to pass to `fit --backbone`; attention: `fit --attention-kind` (none: the
baseline). params: the whole classifier with 14 outputs; attn params: inside the attention modules;
overhead: parameters added to the baseline (a class head takes the place of the linear head and
adds none). FLOPs: 1 multiply-add = 2 FLOPs, one 224 px image; attn MFLOPs: added to the baseline
at output stride 32; os16 GFLOPs: the same classifier with `fit --output-stride 16` (last stage
dilated). maps: attention map size at each gate (class: one map per label; none: the final feature
map Grad-CAM reads), at output stride 32 / 16. n/a (and - in a pair of map sizes): the backbone
cannot change its output stride."""


def run(args: argparse.Namespace) -> int:
    kinds = tuple(dict.fromkeys(args.kinds))
    rows = [
        row
        for name in args.backbones
        for row in table_rows(name, backbone_cost(name, tuple(args.attention_stages), kinds), kinds)
    ]
    print("\n".join(format_table(rows)))
    print()
    print(FOOTNOTE)
    return 0
