"""The Explore page's panels: the image picker, the image row and one backbone column.

Each function draws with Streamlit and takes what it shows as arguments; the page decides layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app import columns as col
from app import figures, images, settings
from app import state as S
from app.inference import view_for
from app.registry import Registry
from core.errors import CxrError

UNIFORM_GATE = 0.05  # an attention map spanning less than this is called "nearly uniform"
OOD_WARNING = "This film is unlike the films this model was trained on: its output is unreliable."


@dataclass(frozen=True)
class PanelOptions:
    opacity: float
    shared_scale: bool
    show_difference: bool
    show_truth: bool


def pick_image(samples: list[images.Sample]) -> images.StudyImage:
    """Sidebar widgets for the image; stops the page with one line when there is none or it is bad."""
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
                st.session_state[S.SAMPLE] = samples[0].name
            truth = {s.name: ", ".join(s.labels) or "no finding" for s in samples}
            st.selectbox(
                "Sample (synthetic, with ground truth)",
                list(truth),
                key=S.SAMPLE,
                format_func=lambda name: f"{Path(name).stem} · {truth[name]}",
            )
        st.toggle("Show ground truth", key=S.SHOW_TRUTH)
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
    study: images.StudyImage, size: int, show_truth: bool, show_identifiers: bool
) -> None:
    """The image as given, as the model sees it (with truth), and its metadata."""
    radiograph = study.radiograph
    h, w = radiograph.height, radiograph.width
    given, seen, meta = st.columns([1, 1, 1])
    given.image(study.pixels, caption=f"{study.name}: {w} x {h} px as given", clamp=True)
    truth = study.sample if show_truth else None
    view = view_for(study.pixels, size)
    seen.plotly_chart(
        figures.overlay_figure(
            view,
            None,
            boxes=images.boxes_in_view(truth.boxes, h, w, size) if truth else [],
            contours=images.mask_outlines(truth.masks, h, w, size) if truth else [],
            title=f"As the model sees it ({size} x {size})",
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


def column_switches(registry: Registry, backbone: str) -> tuple[bool, bool]:
    """The per-column attention and ablation switches; (attention on, ablate)."""
    has_attention = registry.best(backbone, True) is not None
    has_baseline = registry.best(backbone, False) is not None
    if not (has_attention and has_baseline):
        st.session_state[S.attention_key(backbone)] = has_attention
    st.toggle(
        "Attention",
        key=S.attention_key(backbone),
        disabled=not (has_attention and has_baseline),
        help="On: the attention-trained checkpoint. Off: the baseline of the same backbone.",
    )
    attention = bool(st.session_state[S.attention_key(backbone)])
    if not attention:
        st.session_state[S.ablate_key(backbone)] = False
    st.toggle(
        "Ablate attention at inference",
        key=S.ablate_key(backbone),
        disabled=not attention,
        help="Run the attention model with every gate set to 1 (not the trained baseline).",
    )
    return attention, bool(st.session_state[S.ablate_key(backbone)])


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
    head.subheader(entry.title + (" · gates ablated" if result.ablated else ""))
    head.caption(entry.provenance)
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
    radiograph, truth = study.radiograph, study.sample if options.show_truth else None
    h, w, size = radiograph.height, radiograph.width, entry.image_size
    method = col.METHODS.get(exp.method, exp.method)
    st.plotly_chart(
        figures.overlay_figure(
            result.view,
            heat,
            opacity=options.opacity,
            zrange=zrange,
            boxes=images.boxes_in_view(truth.boxes, h, w, size) if truth else [],
            contours=images.mask_outlines(truth.masks, h, w, size) if truth else [],
            title=f"{method} · {result.label} ({exp.stage})",
        ),
        key=f"map-{key}",
    )
    if result.note:
        st.caption(f"ℹ️ {result.note}")
    low, high = float(exp.heat.min()), float(exp.heat.max())
    if exp.method == "attention" and high - low < UNIFORM_GATE:
        st.caption(
            f"ℹ️ the gate is nearly uniform ({low:.3f} to {high:.3f}): this model's attention "
            "barely varies over the image; the colours stretch a tiny range"
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
