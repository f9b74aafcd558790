"""Finding the films in a folder as people hand them over: what is a film, what is debris, what
cannot be read, and which files are byte-identical.

- Debris that archives and desktops leave behind is skipped and counted: macOS `.DS_Store`,
  `__MACOSX/` folders and `._*` AppleDouble files, Windows `Thumbs.db` and `desktop.ini`.
- A film is a PNG, JPEG or DICOM, told by its first bytes (a PACS export's DICOM may have no
  suffix); a file with an image suffix whose bytes are none of these (an empty file, an HTML error
  page saved as .jpeg) is unreadable and named; other files (README, CSV) are counted and left.
- Byte-identical files are grouped by size first, then hashed, so a folder of distinct films
  costs one `stat` each.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from cxr_attention.core.data.radiograph import JPEG_SIGNATURE, PNG_SIGNATURE, SUPPORTED_SUFFIXES

DEBRIS_FILES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
DEBRIS_FOLDERS = frozenset({"__macosx"})
CACHE_FOLDERS = frozenset({".cxr-cache"})  # our own image caches live inside data folders


@dataclass
class FolderScan:
    """The files under one folder, sorted by path: films, and what was not taken and why."""

    films: list[Path] = field(default_factory=list)
    sizes: dict[Path, int] = field(default_factory=dict)  # byte size of each film
    debris: list[Path] = field(default_factory=list)  # skipped: archive and desktop leftovers
    other: list[Path] = field(default_factory=list)  # skipped: not images (README, tables, ...)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # image-named, not a film

    def extend(self, other: FolderScan) -> None:
        self.films += other.films
        self.sizes |= other.sizes
        self.debris += other.debris
        self.other += other.other
        self.unreadable += other.unreadable


def is_debris(name: str) -> bool:
    """Whether a file or folder name is archive or desktop debris (never a film)."""
    lowered = name.lower()
    return lowered in DEBRIS_FILES or lowered in DEBRIS_FOLDERS or name.startswith("._")


def scan_folder(folder: Path) -> FolderScan:
    """Every film under `folder` (recursively), with debris, other files and unreadable ones."""
    scan = FolderScan()
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            if is_debris(name):
                scan.debris.append(here / name)
            elif name.lower() not in CACHE_FOLDERS and not name.startswith("."):
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = here / name
            if is_debris(name):
                scan.debris.append(path)
                continue
            if name.startswith("."):
                scan.other.append(path)
                continue
            kind, size = probe_film(path)
            if kind == "film":
                scan.films.append(path)
                scan.sizes[path] = size
            elif kind == "other":
                scan.other.append(path)
            else:
                scan.unreadable.append((path, kind))
    scan.films.sort()
    return scan


def probe_film(path: Path) -> tuple[str, int]:
    """("film", size) for a PNG, JPEG or DICOM; ("other", size) for a file that is no image by
    name or bytes; (reason, size) for an image-named file that cannot be a film."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})", 0
    image_named = path.suffix.lower() in SUPPORTED_SUFFIXES
    if (
        head.startswith(PNG_SIGNATURE)
        or head.startswith(JPEG_SIGNATURE)
        or head[128:132] == b"DICM"
    ):
        return "film", size
    if not image_named:
        return "other", size
    if size == 0:
        return "empty file (0 bytes)", size
    return "not a PNG, JPEG or DICOM by its bytes", size


def identical_groups(films: list[Path], sizes: dict[Path, int]) -> list[list[Path]]:
    """Groups (two or more files, sorted) of byte-identical films, sorted by their first file."""
    by_size: dict[int, list[Path]] = defaultdict(list)
    for path in films:
        by_size[sizes[path]].append(path)
    groups = []
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        by_hash: dict[bytes, list[Path]] = defaultdict(list)
        for path in same_size:
            by_hash[hashlib.sha256(path.read_bytes()).digest()].append(path)
        groups += [sorted(group) for group in by_hash.values() if len(group) > 1]
    return sorted(groups)
