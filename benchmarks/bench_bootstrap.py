"""What the patient bootstrap of AUCs costs at the size of ChestX-ray14's official test split.

`evaluate` puts a 95% interval on every AUC by resampling patients (`core.metrics.bootstrap_auc`:
one sparse weighted sum per label over all resamples at once). What a user would otherwise write
is the plain loop: for each resample gather the drawn patients' images and call scikit-learn's
`roc_auc_score` per label and once for micro AUC. This script times both on the same synthetic
split (25,596 images of 2,797 patients, 14 labels at ChestX-ray14's prevalences near 5%, float32
scores with ties) and prints seconds for all resamples, milliseconds per resample, CPU seconds and
the ratio. The loop runs on the first `--loop-resamples` resamples of the same draw (it would take
minutes for all of them); both figures are per resample. Results agree (checked here, and in
tests/test_metrics_bootstrap.py against sklearn exactly).

    python benchmarks/bench_bootstrap.py [--resamples 1000] [--loop-resamples 20] [--labels 14]
        [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from cxr_attention.core.metrics import ClusterBootstrap, bootstrap_auc

N_IMAGES, N_PATIENTS = 25_596, 2_797  # the official test list (REFERENCE.md)


def synthetic_split(n_labels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y (N, L) 0/1, scores (N, L) float32 rounded to 3 places, patient ids (N,))."""
    rng = np.random.default_rng(seed)
    patients = rng.integers(0, N_PATIENTS, N_IMAGES)
    y = (rng.random((N_IMAGES, n_labels)) < 0.05).astype(int)
    scores = np.round(rng.random((N_IMAGES, n_labels)) + 0.3 * y, 3).astype(np.float32)
    return y, scores, patients


def plain_loop(y, scores, draws: ClusterBootstrap, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class (n, L) and micro (n,) AUC of the first `n` resamples, one sklearn call each."""
    per_class, micro = [], []
    for b in range(n):
        idx = draws.resample_indices(b)
        per_class.append([roc_auc_score(y[idx, k], scores[idx, k]) for k in range(y.shape[1])])
        micro.append(roc_auc_score(y[idx].ravel(), scores[idx].ravel()))
    return np.array(per_class), np.array(micro)


def clocked(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--loop-resamples", type=int, default=20)
    parser.add_argument("--labels", type=int, default=14)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    y, scores, patients = synthetic_split(args.labels)
    draws = ClusterBootstrap.draw(patients, n_resamples=args.resamples, seed=0)
    result, wall, cpu = clocked(lambda: bootstrap_auc(y, scores, patients, bootstrap=draws))
    n_loop = min(args.loop_resamples, args.resamples)
    (loop_class, loop_micro), loop_wall, loop_cpu = clocked(
        lambda: plain_loop(y, scores, draws, n_loop)
    )
    worst = max(
        np.abs(result.per_class[:n_loop] - loop_class).max(),
        np.abs(result.micro[:n_loop] - loop_micro).max(),
    )

    print(f"# patient bootstrap of AUCs, {platform.machine()}, {args.threads} thread(s)")
    print(f"{N_IMAGES:,} images, {N_PATIENTS:,} patients, {args.labels} labels")
    print("| method | resamples | wall s | ms per resample | CPU ms per resample |")
    print("| --- | --- | --- | --- | --- |")
    fast_ms = 1000 * wall / args.resamples
    loop_ms = 1000 * loop_wall / n_loop
    print(
        f"| bootstrap_auc | {args.resamples} | {wall:.2f} | {fast_ms:.2f} | "
        f"{1000 * cpu / args.resamples:.2f} |"
    )
    print(
        f"| sklearn loop | {n_loop} | {loop_wall:.2f} | {loop_ms:.1f} | "
        f"{1000 * loop_cpu / n_loop:.1f} |"
    )
    print(
        f"bootstrap_auc is {loop_ms / fast_ms:.0f}x the loop per resample in wall time, "
        f"{(loop_cpu / n_loop) / (cpu / args.resamples):.0f}x in CPU time"
    )
    print(f"the loop at {args.resamples} resamples: about {loop_ms * args.resamples / 1000:.0f} s")
    print(f"largest difference from sklearn on the shared resamples: {worst:.1e}")


if __name__ == "__main__":
    main()
