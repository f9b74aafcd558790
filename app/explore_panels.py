"""The Explore page's panels: the image picker, the image row and one backbone column.

Each function draws with Streamlit and takes what it shows as arguments; the page decides layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from cxr_attention.app import columns as col
from cxr_attention.app import figures, images, settings
from cxr_attention.app import state as S
from cxr_attention.app.inference import view_for
from cxr_attention.app.lung_panels import LUNGS_HELP, PRIOR_SEES, lung_line, prior_caption
from cxr_attention.app.registry import Registry
from cxr_attention.core.errors import CxrError
from cxr_attention.core.models.kinds import KIND_TITLES

UNIFORM_GATE = 0.05  # an attention map spanning less than this is called "nearly uniform"
OOD_WARNING = "This film is unlike the films this model was trained on: its output is unreliable."


@dataclass(frozen=True)
class PanelOptions:
    opacity: float
    shared_scale: bool
    show_difference: bool
    show_truth: bool
    show_lungs: bool = False


def follow_sample(samples: list[images.Sample], labels: list[str]) -> None:
    """Explain the chosen sample's finding (a callback of the sample select, and the first visit):
    its lesion is what the maps should find. A normal film leaves the label as it is."""
    chosen = next((s for s in samples if s.name == st.session_state[S.SAMPLE]), None)
    finding = next((x for x in chosen.labels if x in labels), None) if chosen else None
    if finding is not None:
        st.session_state[S.LABEL] = finding


def pick_image(
    samples: list[images.Sample], default: images.Sample | None, labels: list[str]
) -> images.StudyImage:
    """Sidebar widgets for the image; stops the page with one line when there is none or it is bad.

    A session starts on `default` (a sample with a lesion) and on its finding as the label."""
    limit = settings.MAX_UPLOAD_MB
    with st.sidebar:
        st.radio(
            "Image",
            ["sample", "upload"],
            key=S.SOURCE,
            horizontal=True,
            format_func={"sample": "Sample", "upload": "Upload"}.get,
        )
        upload = None
        if st.session_state[S.SOURCE] == "upload":
            upload = st.file_uploader(
                f"PNG, JPEG or DICOM, up to {limit} MB",
                type=list(settings.UPLOAD_TYPES),
                key=S.UPLOAD,
                help="Kept in memory for this session only; never written to disk.",
            )
        elif samples:
            if st.session_state.get(S.SAMPLE) not in [s.name for s in samples]:
                st.session_state[S.SAMPLE] = (default or samples[0]).name
                follow_sample(samples, labels)
            truth = {s.name: ", ".join(s.labels) or "no finding" for s in samples}
            st.selectbox(
                "Sample (synthetic, with ground truth)",
                list(truth),
                key=S.SAMPLE,
                format_func=lambda name: f"{Path(name).stem} · {truth[name]}",
                on_change=follow_sample,
                args=(samples, labels),
                help="Choosing a sample also explains its finding.",
            )
        st.toggle("Show ground truth", key=S.SHOW_TRUTH)
        st.toggle("Show lung fields", key=S.SHOW_LUNGS, help=LUNGS_HELP)
        st.toggle("Show patient identifiers (DICOM)", key=S.SHOW_IDENTIFIERS)
    try:
        if st.session_state[S.SOURCE] == "upload":
            if upload is None:
                st.info(
                    f"Upload a chest radiograph in the sidebar: PNG, JPEG or DICOM, up to {limit} MB."
                )
                st.stop()
            return images.read_upload(upload.name, upload.getvalue())
        if not samples:
            st.info("No samples in `assets/samples/`: choose Upload in the sidebar.")
            st.stop()
        chosen = st.session_state[S.SAMPLE]
        return images.read_sample(next(s for s in samples if s.name == chosen))
    except CxrError as exc:
        st.error(str(exc))
        st.stop()


def image_row(
    study: images.StudyImage,
    size: int,
    show_truth: bool,
    show_identifiers: bool,
    shown: col.Column | None = None,
) -> None:
    """The image as given, as the model sees it (with truth; `shown`'s view and lung outline when
    given: a model with a lung prior sees its lung fields alone), and its metadata."""
    radiograph = study.radiograph
    h, w = radiograph.height, radiograph.width
    given, seen, meta = st.columns([1, 1, 1])
    given.image(study.pixels, caption=f"{study.name}: {w} x {h} px as given", clamp=True)
    truth = study.sample if show_truth else None
    view = shown.view if shown is not None else view_for(study.pixels, size)
    prior = shown is not None and shown.entry.lung_prior != "none"
    truth = truth if shown is None or col.plain_frame(shown.entry) else None
    seen.plotly_chart(
        figures.overlay_figure(
            view,
            None,
            boxes=images.boxes_in_view(truth.boxes, h, w, size) if truth else [],
            contours=images.mask_outlines(truth.masks, h, w, size) if truth else [],
            lungs=shown.lungs.outline if shown is not None and shown.lungs else [],
            title=f"As the model sees it ({size} x {size})"
            + (
                f"<br><sup>{shown.entry.title}: {PRIOR_SEES[shown.entry.lung_prior]}</sup>"
                if prior
                else ""
            ),
        ),
        key="model-view",
    )
    with meta:
        if study.sample is not None:
            st.markdown(
                "**Ground truth:** "
                + (", ".join(study.sample.labels) or "no finding")
                + f" · {study.sample.source}"
            )
        title = "DICOM metadata" if radiograph.meta.format == "dicom" else "File"
        st.markdown(f"**{title}**")
        rows = images.metadata_table(study, show_identifiers)
        st.table({"field": [k for k, _ in rows], "value": [v for _, v in rows]})


def column_switches(registry: Registry, backbone: str) -> tuple[str | None, bool]:
    """The per-column attention switch, the kind it turns on (when several are trained) and the
    ablation switch; returns (attention kind, None for the baseline; ablate)."""
    kinds = [k for k in registry.kinds(backbone) if k is not None]
    has_baseline = None in registry.kinds(backbone)
    if not (kinds and has_baseline):
        st.session_state[S.attention_key(backbone)] = bool(kinds)
    st.toggle(
        "Attention",
        key=S.attention_key(backbone),
        disabled=not (kinds and has_baseline),
        help="On: the attention-trained checkpoint (the paper's spatial gate unless you choose "
        "another kind). Off: the baseline of the same backbone.",
    )
    attention = bool(st.session_state[S.attention_key(backbone)])
    if st.session_state.get(S.kind_key(backbone)) not in kinds:
        st.session_state[S.kind_key(backbone)] = registry.attention_kind(backbone)
    if len(kinds) > 1:
        st.selectbox(
            "Attention kind",
            kinds,
            key=S.kind_key(backbone),
            format_func=KIND_TITLES.get,
            disabled=not attention,
        )
    kind = st.session_state[S.kind_key(backbone)] if attention else None
    if not attention:
        st.session_state[S.ablate_key(backbone)] = False
    entry = registry.best(backbone, kind) if kind else None
    st.toggle(
        "Ablate attention at inference",
        key=S.ablate_key(backbone),
        disabled=not attention,
        help=f"Run the attention model with {col.ablation_words(entry)} (not the trained baseline)."
        if entry
        else "Run the attention model without its attention (not the trained baseline).",
    )
    return kind, bool(st.session_state[S.ablate_key(backbone)])


def backbone_columns(
    registry: Registry,
    chosen: list[str],
    study: images.StudyImage,
    label: str,
    method: str,
    options: PanelOptions,
) -> list[col.Column]:
    """One column per chosen backbone (switches, numbers, map); the columns that could be built."""
    slots = st.columns(len(chosen))
    results: list[col.Column] = []
    heads = {}
    for backbone, slot in zip(chosen, slots, strict=True):
        with slot:
            heads[backbone] = st.container()  # title and provenance, above the switches
            kind, ablate = column_switches(registry, backbone)
            try:
                with st.spinner("Scoring…"):
                    result = col.build_column(
                        registry,
                        backbone,
                        kind,
                        ablate,
                        study,
                        label,
                        method,
                        with_counterpart=options.show_difference,
                        show_lungs=options.show_lungs,
                    )
            except CxrError as exc:
                st.error(str(exc))
                continue
            if result is not None:
                results.append(result)
    ranges = col.colour_ranges(results, options.shared_scale)
    for result in results:
        with slots[chosen.index(result.backbone)]:
            column_panel(result, study, options, ranges[result.backbone], heads[result.backbone])
    return results


def class_agnostic_note(results: list[col.Column]) -> str:
    """What the label selector does not change: the gate maps shown, by model; "" when none."""
    gates = [r.entry.title for r in results if col.class_agnostic(r.entry, r.explanation.method)]
    if not gates:
        return ""
    if len(gates) == 1:
        return (
            f"ℹ️ The gate map of {gates[0]} is class-agnostic: the same for every label, so the "
            "label changes only the other maps."
        )
    return (
        f"ℹ️ The gate maps of {', '.join(gates[:-1])} and {gates[-1]} are class-agnostic: the "
        "same for every label, so the label changes only the other maps."
    )


def unlike_training_notice(results: list[col.Column]) -> None:
    """One warning above the columns naming every model that flags the image."""
    titles = [r.entry.title for r in results if r.unlike_training]
    if len(titles) == 1:
        st.warning(
            f"This film is unlike the films {titles[0]} was trained on: its output is unreliable.",
            icon="⚠️",
        )
    elif titles:
        st.warning(
            f"This film is unlike the films {', '.join(titles)} were trained on: their output "
            "is unreliable.",
            icon="⚠️",
        )


def trust_notice(result: col.Column, where: DeltaGenerator) -> None:
    """The out-of-distribution warning (or that the model cannot give one) and what the
    probabilities are, under a column's title."""
    ood = result.ood
    if ood is not None and ood.flagged:
        where.warning(OOD_WARNING, icon="⚠️")
        where.caption(
            f"Its features lie further from this model's training films than those of almost all "
            f"of its validation films (score {ood.score:.1f}, limit {ood.threshold:.1f})."
        )
    elif ood is None:
        where.caption(
            "ℹ️ This model was saved without a description of its training films: it cannot "
            "warn when an image is unlike them."
        )
    if result.calibrated:
        where.caption("Probabilities are calibrated on the validation split (temperature scaling).")
    else:
        where.caption("Probabilities are the raw model outputs: this model was not calibrated.")


def column_panel(
    result: col.Column,
    study: images.StudyImage,
    options: PanelOptions,
    zrange: tuple[float, float],
    head: DeltaGenerator,
) -> None:
    """Title and provenance (into `head`), probabilities, positives, the explanation map, the
    on/off difference and the overlay PNG."""
    entry, key = result.entry, result.backbone
    ablated = " · class attention ablated" if entry.class_specific else " · gates ablated"
    head.subheader(entry.title + (ablated if result.ablated else ""))
    head.caption(entry.provenance)
    prior_caption(entry, head)
    trust_notice(result, head)
    title = (
        "Calibrated probability per label"
        if result.calibrated
        else "Probability per label (not calibrated)"
    )
    st.plotly_chart(
        figures.probability_chart(entry.labels, result.probabilities, result.thresholds, title),
        key=f"prob-{key}",
    )
    found = result.positives()
    called = ", ".join(f"**{name}** {p:.2f} (threshold {t:.2f})" for name, p, t in found)
    st.markdown(f"Above the validation threshold: {called or 'none'}")
    exp = result.explanation
    heat = exp.raw if options.shared_scale else exp.heat
    radiograph = study.radiograph
    truth = study.sample if options.show_truth and col.plain_frame(entry) else None
    h, w, size = radiograph.height, radiograph.width, entry.image_size
    st.plotly_chart(
        figures.overlay_figure(
            result.view,
            heat,
            opacity=options.opacity,
            zrange=zrange,
            boxes=images.boxes_in_view(truth.boxes, h, w, size) if truth else [],
            contours=images.mask_outlines(truth.masks, h, w, size) if truth else [],
            lungs=result.lungs.outline if result.lungs else [],
            peak=exp.peak,
            title=col.map_title(entry, result.label, exp),
            colorbar_title=col.colorbar_title(entry, result.label, exp),
        ),
        key=f"map-{key}",
    )
    lung_line(result)
    if result.note:
        st.caption(f"ℹ️ {result.note}")
    low, high = float(exp.heat.min()), float(exp.heat.max())
    if exp.method == "attention" and high - low < UNIFORM_GATE:
        what = f"the class map of {result.label}" if entry.class_specific else "the gate"
        stretch = "" if options.shared_scale else "; the colours stretch a tiny range"
        st.caption(
            f"ℹ️ {what} is nearly uniform ({low:.3f} to {high:.3f}): this model's attention "
            f"barely varies over the image{stretch}"
        )
    if options.show_difference:
        difference = result.difference()
        if difference is None:
            st.caption("No other variant of this backbone to compare with.")
        else:
            probs, diff_map = difference
            st.plotly_chart(
                figures.probability_difference_chart(
                    entry.labels, probs, "Probability: attention on − off"
                ),
                key=f"dprob-{key}",
            )
            limit = 0.0 if diff_map is None else float(np.abs(diff_map).max())
            if diff_map is not None and limit == 0.0:
                st.caption("The two maps are identical (both zero?): no map difference to show.")
            elif diff_map is not None:
                # symmetric around 0 and stretched to the largest change, so small shifts show
                st.plotly_chart(
                    figures.overlay_figure(
                        result.view,
                        diff_map,
                        opacity=options.opacity,
                        zrange=(-limit, limit),
                        colorscale=figures.DIFF_SCALE,
                        colorbar_title="on − off",
                        title=f"{col.METHODS[result.pair_method]}: attention on − off",
                    ),
                    key=f"dmap-{key}",
                )
    st.download_button(
        "Download overlay PNG",
        col.overlay_png(result.view, heat, options.opacity, zrange),
        file_name=f"{study.name}_{entry.name}_{result.label}.png",
        mime="image/png",
        key=f"png-{key}",
    )
