"""The in-lung figures drawn on Compare and Localization: for each model, how often each of its
maps peaks inside the lung fields across the held-out films, beside a random map, the backbones
side by side, and the teaching model beside its twin with the lung prior (`app.lung_rates`)."""

from __future__ import annotations

from pathlib import Path

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


def short_variant(entry: ModelEntry) -> str:
    """A chart row's model, under its backbone's title: "baseline", "+ gate", "+ class, no lung
    prior"."""
    words = {None: "baseline", "spatial": "+ gate", "cbam": "+ CBAM", "class": "+ class"}
    return words[entry.kind] + (", no lung prior" if entry.teaching else "")


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
                categories.append(f"{short_variant(entry)} · {rate.short_map}")
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


GALLERY_FILMS = 6


def lung_gallery(registry: Registry, entry: ModelEntry) -> None:
    """The first held-out films with a finding (by image id), each with the model's own map of
    it, the lung fields outlined and, under a map that peaks outside them, the line that says so;
    or one line saying why the films cannot be shown."""
    from cxr_attention.app import cases
    from cxr_attention.app.columns import build_column, map_heading, map_source
    from cxr_attention.app.lung_panels import lung_line
    from cxr_attention.core.errors import CxrError
    from cxr_attention.core.explain.localize_run import labelled_cases

    index, why = cases.dataset_for(entry)
    if index is None:
        st.caption(f"Films not shown: {why}.")
        return
    found = labelled_cases(index.split("test"), list(entry.labels))[:GALLERY_FILMS]
    if not found:
        st.caption("No held-out film of this dataset carries one of the model's labels.")
        return
    method = cases.own_method(entry)
    for i, case in enumerate(found):
        label = case.labels[0]
        if i % 3 == 0:
            grid = st.columns(3)  # one row at a time: the lines under the maps keep rows apart
        with grid[i % 3]:
            try:
                study = cases.study_for(index, case.image_id)
                column = build_column(
                    registry,
                    entry.backbone,
                    entry.kind,
                    False,
                    study,
                    label,
                    method,
                    False,
                    show_lungs=True,
                    entry=entry,
                )
            except CxrError as exc:
                st.error(str(exc))
                continue
            explained = column.explanation
            heading = " · ".join(
                x for x in (map_heading(entry, label, explained), map_source(explained)) if x
            )
            st.plotly_chart(
                figures.overlay_figure(
                    column.view,
                    explained.heat,
                    lungs=column.lungs.outline if column.lungs else [],
                    peak=explained.peak,
                    title=f"{Path(case.image_id).name}<br><sup>{heading}</sup>",
                ),
                key=f"lung-gal-{case.image_id}",
            )
            if column.lungs is None:
                st.caption(cases.NO_FIELDS)
            else:
                lung_line(column)
