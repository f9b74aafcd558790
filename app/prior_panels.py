"""The Explore page's lung-prior view: one film before a model that reads its lung fields alone and
its teaching twin, trained without the lung prior (issue 36, "What it teaches"), with the figures
that tell them apart: where each map peaks on this film, and how often it peaks inside the lungs
across the held-out films, beside a random map.

`pair_columns` builds the two columns (no Streamlit); `pair_row` draws them.
"""

from __future__ import annotations

import streamlit as st

from cxr_attention.app import figures, models
from cxr_attention.app.columns import (
    METHODS,
    Column,
    build_column,
    colorbar_title,
    effective_method,
    map_title,
    plain_frame,
)
from cxr_attention.app.images import StudyImage, boxes_in_view, mask_outlines
from cxr_attention.app.lung_panels import lung_line, prior_caption
from cxr_attention.app.lung_rates import shown_rate, teaching_words
from cxr_attention.app.mechanisms import ONE_SCALE
from cxr_attention.app.registry import ModelEntry, Registry
from cxr_attention.core.errors import CxrError

INSIDE_WORDS = "peaks inside the lungs or at their edge on this film"


def pair_label(pair: tuple[ModelEntry, ModelEntry]) -> str:
    """How a pair appears in the select: the shared variant, then the run names."""
    prior, teaching = pair
    return f"{prior.title}: {prior.name} and {teaching.name}"


def pair_columns(
    registry: Registry,
    pair: tuple[ModelEntry, ModelEntry],
    study: StudyImage,
    label: str,
    method: str,
) -> list[Column | str]:
    """The film scored by both models of `pair` (with the prior, then without), each map held to
    the lung fields; a model that cannot score the film gives its one-line reason instead."""
    out: list[Column | str] = []
    for entry in pair:
        used, _ = effective_method(entry, method, False)
        try:
            column = build_column(
                registry, entry.backbone, entry.kind, False, study, label, used, False, True, entry
            )
        except CxrError as exc:
            out.append(str(exc))
            continue
        out.append(column if column is not None else f"{entry.name}: no checkpoint")
    return out


def pair_row(
    pair: tuple[ModelEntry, ModelEntry],
    columns: list[Column | str],
    study: StudyImage,
    opacity: float,
    show_truth: bool,
) -> None:
    """The two maps side by side on one colour scale, the lung fields outlined, and under each
    the line for this film and the rate across the held-out films."""
    h, w = study.radiograph.height, study.radiograph.width
    rates = []
    for entry, column, slot in zip(pair, columns, st.columns(2), strict=True):
        with slot:
            st.markdown(f"**{entry.title}**")
            if isinstance(column, str):
                st.error(column)
                rates.append([])
                continue
            size = entry.image_size
            truth = study.sample if show_truth and plain_frame(entry) else None
            p = float(column.probabilities[list(column.labels).index(column.label)])
            st.plotly_chart(
                figures.overlay_figure(
                    column.view,
                    column.explanation.heat,
                    opacity=opacity,
                    zrange=ONE_SCALE,
                    boxes=boxes_in_view(truth.boxes, h, w, size) if truth else [],
                    contours=mask_outlines(truth.masks, h, w, size) if truth else [],
                    lungs=column.lungs.outline if column.lungs else [],
                    peak=column.explanation.peak,
                    title=map_title(entry, column.label, column.explanation),
                    colorbar_title=colorbar_title(entry, column.label, column.explanation),
                ),
                key=f"prior-{'teaching' if entry.teaching else 'prior'}",
            )
            words = [f"P({column.label}) = {p:.2f}"]
            if column.lungs is not None:
                share = column.lungs.score.share
                words.append(f"{share:.0%} of the map's mass inside the lungs")
                if not column.lungs.line:
                    words.append(INSIDE_WORDS + " ✓")
            if column.note:
                words.append(column.note)
            st.caption(" · ".join(words))
            lung_line(column)
            prior_caption(entry)
            study_json = models.study(entry)
            own = column.explanation.method == "attention"
            rate, subject = shown_rate(
                entry.name, study_json, column.label, own, column.explanation.stage
            )
            if rate is not None:
                st.caption(f"**As a rule:** {rate.words(subject)}.")
            else:
                st.caption(
                    "No in-lung figures across films for this model yet: `cxr-attention study "
                    f"{entry.run.path}` writes them."
                )
            st.caption(f"{entry.name} · {entry.provenance}")
            rates.append(models.lung_rates(entry)[0])
    paragraph = teaching_words(rates[0], rates[1], pair[0].title, pair[1].title)
    if paragraph:
        st.markdown(paragraph)


METHOD_CHOICES = {"attention": "Its own map (gate or class map)", "gradcam": METHODS["gradcam"]}
