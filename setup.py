"""The package list for setuptools: everything under core/, train/, app/ and assets/, named as
subpackages of cxr_attention (pyproject.toml's package-dir maps the folders; this only names the
packages, which pyproject's own `packages.find` cannot prefix). Folders without __init__.py (the
app's pages, the presets, the zoos and samples of assets/) are listed too, as namespace packages,
so that setuptools ships their files."""

from setuptools import find_namespace_packages, setup

FOLDERS = ("core", "train", "app", "assets")
PACKAGES = [pattern for folder in FOLDERS for pattern in (folder, f"{folder}.*")]

setup(
    packages=[
        "cxr_attention",
        *(f"cxr_attention.{name}" for name in find_namespace_packages(include=PACKAGES)),
    ]
)
