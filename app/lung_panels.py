"""The lung fields drawn on the Explore page: the toggle's help, the line under a map that peaks
outside them, why a film has no outline, and what of the film a model reads (its lung prior).

Each function draws with Streamlit and takes what it shows as arguments (`app.lung_fields` finds
the fields and holds the maps to them).
"""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from cxr_attention.app.columns import Column
from cxr_attention.app.lung_fields import FilmFields
from cxr_attention.app.registry import ModelEntry

LUNG_ICON = ":material/pulmonology:"  # Streamlit's own icon font: no emoji font needed
LUNGS_HELP = (
    "The lung fields as the shipped lung model finds them on this film, dashed on every map, and "
    "a line under any map whose peak lies outside them and their edge. On by default for models "
    "that learnt real films."
)
LUNG_NOTE = (
    "The dashed pale-blue outline is the film's lung fields as the shipped lung model finds them "
    "(a tool for judging the maps, not a diagnosis). A chest finding lies inside them or at "
    "their edge: a map that peaks elsewhere says so under it. The white circle marks each map's "
    "peak, the place the model is surest of, even where a class map is 1.0 over a whole region."
)
PRIOR_SEES = {"mask": "its lung fields alone", "crop": "the box around its lung fields"}


def lung_line(result: Column) -> None:
    """Under a map that peaks outside the lung fields, core's one plain line (`flag_line`)."""
    line = result.lungs.line if result.lungs else None
    if line:
        st.warning(f"This map {line}.", icon=LUNG_ICON)
    elif result.lungs is not None and result.lungs.flat:
        st.caption(f"{LUNG_ICON} This map is flat: it has no peak to hold to the lungs.")


def lung_notice(film: FilmFields | None) -> None:
    """Above the maps: why no lung outline is drawn (the lung model refused the film, or there is
    no lung model), or what the lung model noticed."""
    if film is None:
        return
    if film.problem:
        st.warning(film.problem, icon=LUNG_ICON)
    for warning in film.warnings:
        st.caption(f"{LUNG_ICON} Lung fields: {warning}")


def prior_caption(entry: ModelEntry, where: DeltaGenerator | None = None) -> None:
    """What of the film the model reads, when its collection has a lung prior."""
    if entry.prior_words:
        (where or st).caption(f"{LUNG_ICON} This model {entry.prior_words}.")
