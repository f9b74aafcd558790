"""cxr-attention's one import name: `cxr_attention.core`, `.train`, `.app` and `.assets`.

The repository keeps the top-level folders the project card names (core/, train/, app/, assets/);
pyproject.toml maps each of them under this package (setuptools `package-dir`), so an installation
adds `cxr_attention` alone to site-packages, never the generic names `core`, `train` or `app`.
The four folders keep their places relative to each other in the wheel as in the checkout, so
paths such as `assets/zoo` are found the same way in both.
"""

from cxr_attention.core import __version__

__all__ = ["__version__"]
