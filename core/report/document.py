"""The comparison report as data: what `build_report` computes and every renderer reads.

A level below `core.report.compare` (which builds it) and `render_md` / `render_html` (which write
it), so the renderers never import the module that calls them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cxr_attention import core
from cxr_attention.core.report.pairs import PairComparison
from cxr_attention.core.report.results import RunResult
from cxr_attention.core.report.roc import Curve
from cxr_attention.core.report.tables import Table


@dataclass
class Section:
    """A heading, a paragraph and tables."""

    key: str
    title: str
    text: str = ""
    tables: list[Table] = field(default_factory=list)


@dataclass
class ComparisonReport:
    """Everything a renderer needs; computed once."""

    title: str
    data: str
    phantom: bool
    created: str
    runs: list[RunResult]
    sections: list[Section]
    pairs: list[PairComparison]
    curves: dict[str, list[Curve]]
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "data": self.data,
            "phantom": self.phantom,
            "created": self.created,
            "package_version": core.__version__,
            "runs": {r.name: str(r.folder.path) for r in self.runs},
            "notes": self.notes,
            "pairs": [
                {
                    "backbone": p.backbone,
                    "kind": p.kind,
                    "baseline": p.baseline.name,
                    "attention": p.attention.name,
                    "n_images": p.n_images,
                    "n_patients": p.n_patients,
                    "per_class": p.per_class,
                    "overall": p.overall,
                    "n_resamples": p.n_resamples,
                }
                for p in self.pairs
            ],
            "sections": {
                s.key: {"title": s.title, "tables": {t.key: t.as_json() for t in s.tables}}
                for s in self.sections
            },
        }
