"""The Explore page's mechanisms row, drawn: one panel per map, the words that say what they mean.

Each function draws with Streamlit and takes what it shows as arguments (`app.mechanisms` builds
the panels); the page decides where.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cxr_attention.app import figures, images, models
from cxr_attention.app import mechanisms as mech
from cxr_attention.app.columns import map_title, plain_frame
from cxr_attention.app.explore_panels import OOD_WARNING, trust_notice
from cxr_attention.app.hit_rates import hit_rate
from cxr_attention.app.lung_panels import LUNG_NOTE, lung_line, prior_caption
from cxr_attention.app.lung_rates import shown_rate


def mechanism_row(
    panels: list[mech.Panel], study: images.StudyImage, opacity: float, show_truth: bool
) -> None:
    """The maps side by side, one colour scale, the truth and the lung fields outlined, a line of
    numbers under each, and under a map that peaks outside the lungs the line that says so."""
    h, w = study.radiograph.height, study.radiograph.width
    for panel, slot in zip(panels, st.columns(len(panels)), strict=True):
        with slot:
            st.markdown(f"**{panel.heading}**")
            column = panel.column
            if column is None:
                st.info(panel.missing)
                continue
            size = column.entry.image_size
            truth = study.sample if show_truth and plain_frame(column.entry) else None
            st.plotly_chart(
                figures.overlay_figure(
                    column.view,
                    column.explanation.heat,
                    opacity=opacity,
                    zrange=mech.ONE_SCALE,
                    boxes=images.boxes_in_view(truth.boxes, h, w, size) if truth else [],
                    contours=images.mask_outlines(truth.masks, h, w, size) if truth else [],
                    lungs=column.lungs.outline if column.lungs else [],
                    peak=column.explanation.peak,
                    title=map_title(column.entry, column.label, column.explanation),
                    colorbar_title=panel.colorbar,
                ),
                key=f"mech-{panel.role}",
            )
            st.caption(mech.panel_caption(panel))
            lung_line(column)
            own = panel.role != "gradcam"
            rate = hit_rate(column.entry, column.label, own, column.explanation.stage)
            if rate is not None:
                st.caption(f"**As a rule:** {rate.words(column.label)}.")
            in_lungs, subject = shown_rate(
                column.entry.name,
                models.study(column.entry),
                column.label,
                own,
                column.explanation.stage,
            )
            if in_lungs is not None:
                st.caption(f"**As a rule:** {in_lungs.words(subject)}.")
            # below the maps, so that they line up whatever is said about each model
            st.caption(f"{column.entry.title} · {column.entry.provenance}")
            prior_caption(column.entry)
            if column.unlike_training:
                st.warning(OOD_WARNING, icon="⚠️")


def reading(panels: list[mech.Panel], label: str, study: images.StudyImage) -> None:
    """What the figures mean, in plain words, under the row."""
    truth = tuple(study.sample.labels) if study.sample else ()
    notes = mech.reading_notes(panels, label, truth)
    if any(p.column is not None and p.column.lungs for p in panels):
        notes.append(LUNG_NOTE)
    st.markdown("\n".join(f"- {note}" for note in notes))


def details(panels: list[mech.Panel]) -> None:
    """Every label's probability from each model of the row, and what each model's numbers are."""
    shown = {p.column.entry.name: p.column for p in panels if p.column is not None}
    if not shown:
        return
    with st.expander("Every label's probability from these models"):
        first = next(iter(shown.values()))
        same = [c for c in shown.values() if c.labels == first.labels]
        table = pd.DataFrame({c.entry.title: c.probabilities for c in same}, index=first.labels)
        st.dataframe(table.style.format("{:.3f}"), width="stretch")
        for column in shown.values():
            st.markdown(f"**{column.entry.title}** · attention: {column.entry.kind_title}")
            trust_notice(column, st.container())
