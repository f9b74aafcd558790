"""The lung model shipped in assets/lungs (made by `cxr-attention fit-lungs`, card in LUNGS.json).

Loaded once per process (`shipped_lung_model`): the CLI, the study and the app share it. A
checkout or installation without it says how to make one.
"""

from __future__ import annotations

import functools
from pathlib import Path

from cxr_attention.core.errors import CheckpointError
from cxr_attention.core.lungs.model import LungModel, load_lung_model

# core/lungs/ -> the package root, which holds assets/ in the checkout and in the wheel alike
LUNG_MODEL = Path(__file__).resolve().parents[2] / "assets" / "lungs" / "lungs.pt"
MAKE_IT = (
    "cxr-attention fit-lungs --data ../shared/realdata-lungs --phantom 100 --familiar "
    "../shared/realdata-pneumonia --out assets/lungs"
)


def lung_model_at(path: str | Path | None = None) -> LungModel:
    """The lung model at `path` (a lungs.pt or its folder), or the shipped one."""
    if path is None:
        return shipped_lung_model()
    path = Path(path)
    if path.is_dir():
        path = path / LUNG_MODEL.name
    return _load(str(path.resolve()))


def shipped_lung_model() -> LungModel:
    """The shipped lung model, loaded once."""
    if not LUNG_MODEL.is_file():
        raise CheckpointError(
            f"no lung model at {LUNG_MODEL}: make one with `{MAKE_IT}` or pass --lung-model PATH"
        )
    return _load(str(LUNG_MODEL))


@functools.lru_cache(maxsize=4)
def _load(path: str) -> LungModel:
    return load_lung_model(path)
