"""`cxr-attention lungs` films per second on the CPU, and what holding maps to the lungs adds to a
study (issue 35, part 5).

In one run, on the same films and the shipped lung model:

  decode    load_radiograph + model_view of every film alone (what any reader of the films pays);
  segment   the lung model on the ready views, in batches of 1 and of 16;
  lungs     `core.lungs.files.write_lung_masks` end to end (decode, segment, clean up, resize to the
            film's own size, write the PNG), as the `lungs` command runs it;
  study     `run_study` of a small phantom-trained run with and without the lung figures
            (`lungs=False`), on the same films: what the in-lung figures add.

Prints films/s and CPU ms per film, and the study's ratio with/without lungs. Nothing is asserted.

    python benchmarks/bench_lungs.py [--films DIR] [--n 200] [--threads 1] [--study-run RUN]

Without --films it draws N phantom films at 512 px into a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cxr_attention.core.data.preprocess import model_view
from cxr_attention.core.data.radiograph import iter_radiograph_files, load_radiograph
from cxr_attention.core.lungs.files import write_lung_masks
from cxr_attention.core.lungs.segment import segment_views
from cxr_attention.core.lungs.shipped import shipped_lung_model


def timed(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def line(name: str, n: int, wall: float, cpu: float) -> str:
    return f"{name:<28} {n / wall:8.1f} films/s   {1000 * cpu / n:8.1f} CPU ms per film"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--films", type=Path, help="folder of films (default: drawn phantom films)")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--study-run", type=Path, help="a phantom run to study with and without lungs"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = shipped_lung_model()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.films
        if folder is None:
            from cxr_attention.core.data.phantom import generate_phantom

            folder = Path(tmp) / "phantom"
            generate_phantom(folder, args.n, size=512, seed=77, workers=1)
            folder = folder / "images"
        paths = list(iter_radiograph_files([folder]))[: args.n]
        n = len(paths)
        print(f"{n} films from {folder}; lung model {model.identity} at {model.image_size} px; "
              f"{torch.get_num_threads()} torch thread(s)")  # fmt: skip
        wall, cpu, views = timed(
            lambda: np.stack([model_view(load_radiograph(p), model.image_size) for p in paths])
        )
        print(line("decode (load + view)", n, wall, cpu))
        for batch in (1, 16):
            wall, cpu, _ = timed(
                lambda b=batch: [segment_views(views[i : i + b], model) for i in range(0, n, b)]
            )
            print(line(f"segment, batch {batch}", n, wall, cpu))
        out = Path(tmp) / "masks"
        wall, cpu, results = timed(lambda: list(write_lung_masks([folder], out, model)))
        refused = sum(r.written is None for r in results)
        print(line("lungs (the command's path)", len(results), wall, cpu) + f"   {refused} refused")
    if args.study_run:
        from cxr_attention.core.study.run import run_study

        figures = {}
        for lungs in (False, True):
            wall, cpu, _ = timed(
                lambda lungs=lungs: run_study(args.study_run, lungs=lungs, repeats=1)
            )
            figures[lungs] = (wall, cpu)
            print(f"study {'with' if lungs else 'without'} lung figures: {wall:.1f} s wall, "
                  f"{cpu:.1f} s CPU")  # fmt: skip
        print(f"the lung figures add {figures[True][0] / figures[False][0] - 1:+.0%} to the study")


if __name__ == "__main__":
    main()
