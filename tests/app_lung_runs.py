"""Real-film-like runs for the app's lung-field pages (tests/test_app_lungs.py, the browser test).

Phantom films laid out as a real collection is (class folders: `train/` and `test/`, NORMAL and
PNEUMONIA, no lesion outline and no lung mask beside them), so that every figure comes the way it
comes for real films: the lung fields from the shipped lung model, study.json with data.truth
"none" and the in-lung sections. Models are untrained (64 px; what is checked is that the app shows
what they compute), for two backbones, read through the lung prior as the retrained real-film zoo
is, plus the teaching model: the same backbone and kind as one of them, without the prior. Each is
evaluated and studied by the project's own code.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

SIZE = 64  # the models' input
FILM = 128  # the films' side: the lung model reads them at its own size
TITLE = "phantom films in class folders (no outlines)"
LABELS = ("Pneumonia",)
# (run name, backbone, attention kind, lung prior)
RUNS = (
    ("mobilenetv2_100", "mobilenetv2_100", None, "mask"),
    ("mobilenetv2_100+class", "mobilenetv2_100", "class", "mask"),
    ("mobilenetv2_100+class-whole-film", "mobilenetv2_100", "class", "none"),
    ("resnet18", "resnet18", None, "mask"),
    ("resnet18+attention", "resnet18", "spatial", "mask"),
)
STUDY_FILMS = 8


@dataclass(frozen=True)
class LungRuns:
    runs: Path  # folder of run folders
    data: Path  # the class-folder collection they "learnt"
    films: list[Path]  # its held-out films with the finding, for uploads


def class_folders(phantom: Path, out: Path) -> Path:
    """The phantom's films as `out/{train,test}/{NORMAL,PNEUMONIA}/*.png` (any finding: PNEUMONIA)."""
    from cxr_attention.core.data.sources import open_dataset

    index = open_dataset(phantom)
    for split in ("train", "test"):
        frame = index.split(split)
        for row in frame.itertuples(index=False):
            sick = any(getattr(row, label) == 1 for label in index.labels)
            folder = out / split / ("PNEUMONIA" if sick else "NORMAL")
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(row.path, folder / Path(row.path).name)
    return out


def _training(data, index) -> dict:
    return {
        "epochs": 1,
        "best_epoch": 1,
        "best_val_macro_auc": 0.7,
        "data": {
            "source": "class_folders",
            "title": TITLE,
            "root": str(data),
            "fingerprint": index.fingerprint,
            "label_set": "auto",
            "labels": list(LABELS),
        },
        "pretrained": None,
        "thresholds": {label: {"youden": 0.5, "f1": 0.5} for label in LABELS},
        "seed": 0,
    }


def build_lung_runs(root: Path, n: int = 160) -> LungRuns:
    from cxr_attention.core.data.phantom import generate_phantom
    from cxr_attention.core.data.sources import ReadOptions, open_dataset
    from cxr_attention.core.evaluation import evaluate_run
    from cxr_attention.core.lungs.shipped import shipped_lung_model
    from cxr_attention.core.models.attention import SpatialAttention
    from cxr_attention.core.models.checkpoint import save_checkpoint
    from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig
    from cxr_attention.core.study.run import run_study

    generate_phantom(root / "phantom", n=n, size=FILM, seed=0, workers=1)
    data = class_folders(root / "phantom", root / "films")
    index = open_dataset(data, ReadOptions(labels=LABELS))
    identity = shipped_lung_model().identity
    runs = root / "runs"
    for i, (name, backbone, kind, prior) in enumerate(RUNS):
        torch.manual_seed(i)
        config = ModelConfig(
            backbone,
            LABELS,
            attention=kind is not None,
            attention_kind=kind or "spatial",
            output_stride=16 if kind == "class" else 32,
            image_size=SIZE,
            lung_prior=prior,
            lung_model=identity if prior != "none" else "",
        )
        model = AttentionClassifier(config).eval()
        for gate in model.modules():
            if isinstance(gate, SpatialAttention):
                torch.nn.init.ones_(gate.bn.weight)  # untrained gates start uniform
        save_checkpoint(runs / name / "checkpoint.pt", model, _training(data, index))
        evaluate_run(runs / name, n_resamples=20, progress=False, num_workers=0)
        run_study(runs / name, limit=STUDY_FILMS, batch_size=8, repeats=1)
    test = index.split("test")
    films = [Path(p) for p in test.loc[test["Pneumonia"] == 1, "path"]]
    return LungRuns(runs, data, films)
