"""Trust across the two zoos: which images each shipped model flags as unlike its training films.

For every model of the phantom zoo (assets/zoo) and of the real-film zoo (assets/zoo-pneumonia),
the share of each set its out-of-distribution warning flags (`core.ood_probes.flag_shares`), and
its mean probability of its first label:

  paediatric   held-out films of Kermany's collection (the real zoo's own test patients), when
               ../shared/realdata-pneumonia is here
  adult NIH    the 25 ChestX-ray14 films in ../shared/realdata (adults, another hospital), when here
  phantom      test films of a phantom drawn with a seed no model trained on
  not a chest  generated images: noise, a checkerboard, a gradient, a page of text, a bright disc

    python benchmarks/trust_across_zoos.py [--limit 300] [--phantom 200]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from cxr_attention.core.data.sources import open_dataset, recorded_options
from cxr_attention.core.models.checkpoint import load_checkpoint
from cxr_attention.core.ood_probes import flag_shares, probe_sets
from cxr_attention.train.zoos.registry import ZOOS, zoo_named

SHARED = Path(__file__).resolve().parents[2] / "shared"


def paediatric_films(limit: int) -> list[Path]:
    """The real zoo's own held-out patients, as its training recorded the split."""
    root = SHARED / "realdata-pneumonia"
    shipped = zoo_named("pneumonia").folder / "mobilenetv2_100" / "checkpoint.pt"
    if not root.is_dir() or not shipped.is_file():
        return []
    checkpoint = load_checkpoint(shipped)
    index = open_dataset(root, recorded_options(checkpoint.training["data"], checkpoint.labels))
    test = index.split("test")
    return [Path(p) for p in test.sample(min(limit, len(test)), random_state=0)["path"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=300, help="paediatric films scored")
    parser.add_argument("--phantom", type=int, default=1000, help="phantom drawn (its test films)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        probes = probe_sets(Path(tmp), args.phantom)
        sets = {
            "paediatric": paediatric_films(args.limit),
            "adult NIH": sorted((SHARED / "realdata" / "images").glob("*.png")),
            "phantom": probes["phantom films"],
            "not a chest": probes["not a chest film"],
        }
        print("share flagged out of distribution (images scored) [mean P of the first label]")
        print(f"{'model':40s}" + "".join(f"{name:>24s}" for name in sets))
        for zoo in ZOOS:
            for checkpoint in sorted(zoo.folder.glob("*/checkpoint.pt")):
                shares = flag_shares(checkpoint, {k: v for k, v in sets.items() if v})
                cells = []
                for name in sets:
                    if name not in shares:
                        cells.append("absent")
                        continue
                    s = shares[name]
                    mean = next(iter(s["mean_probability"].values()))
                    cells.append(f"{s['share']:.2f} ({s['n']:3d}) [{mean:.2f}]")
                tag = f"{zoo.name}/{checkpoint.parent.name}"
                print(f"{tag:40s}" + "".join(f"{c:>24s}" for c in cells))


if __name__ == "__main__":
    main()
