"""The in-lung figures drawn on Compare and Localization: for each model, how often each of its
maps peaks inside the lung fields across the held-out films, beside a random map, the backbones
side by side, and the teaching model beside its twin with the lung prior (`app.lung_rates`)."""

from __future__ import annotations

import streamlit as st

from cxr_attention.app import figures, models
from cxr_attention.app.lung_rates import METRICS, LungRate, rates_frame, teaching_words
from cxr_attention.app.registry import ModelEntry, Registry

EXPLAINED = (
    "Every frontal chest film has lung fields, and a chest finding lies inside them or at their "
    "edge. For each held-out film with the finding, each map's peak is held to the film's lung "
    "fields (the shipped lung model's, or the collection's own masks); the grey bar is a random "
    "map of the same smoothness on the same films. A map far below its random control reads "
    "something other than the lungs: the abdomen, the spine, a text marker or the padding."
)


def gather(entries: list[ModelEntry]) -> tuple[dict[str, list[LungRate]], list[str]]:
    """{run name: its in-lung rates} for the runs that have any, and one line per unreadable
    file."""
    found, problems = {}, []
    for entry in entries:
        rates, problem = models.lung_rates(entry)
        if problem:
            problems.append(f"{entry.name}: {problem}")
        if rates:
            found[entry.name] = rates
    return found, problems


def lung_section(
    registry: Registry, entries: list[ModelEntry], metric: str = "peak_inside", key: str = "lungs"
) -> bool:
    """Draw the in-lung figures of `entries` (per backbone, side by side), their table and the
    teaching pair's words; False when none of them has any."""
    found, problems = gather(entries)
    for problem in problems:
        st.error(problem)
    shown = [e for e in registry.side_by_side(entries) if e.name in found]
    if not shown:
        return False
    st.caption(EXPLAINED)
    backbones = list(dict.fromkeys(e.backbone for e in shown))
    for backbone, slot in zip(backbones, st.columns(len(backbones)), strict=True):
        mine = [e for e in shown if e.backbone == backbone]
        categories, ours, random = [], [], []
        for entry in mine:
            for rate in found[entry.name]:
                categories.append(f"{entry.variant_title or entry.title}<br>{rate.map_words}")
                ours.append(rate.value(metric))
                random.append(rate.random_value(metric))
        with slot:
            st.plotly_chart(
                figures.lung_rate_figure(
                    categories, ours, random, METRICS[metric], title=mine[0].backbone_title
                ),
                key=f"{key}-{backbone}",
            )
    titles = {e.name: e.title for e in shown}
    rates = [rate for e in shown for rate in found[e.name]]
    st.dataframe(rates_frame(rates, titles).round(3), hide_index=True, width="stretch")
    for prior, teaching in registry.teaching_pairs():
        if prior.name in found and teaching.name in found:
            words = teaching_words(
                found[prior.name], found[teaching.name], prior.title, teaching.title
            )
            if words:
                st.markdown(words)
    return True
