"""Attention over training: the maps of a few validation films after every epoch, on a slider."""

import streamlit as st

from cxr_attention.app import cases, components, figures, models
from cxr_attention.app import state as S
from cxr_attention.app import timeline_view as tv
from cxr_attention.core.explain.localization import peak_of
from cxr_attention.core.models.class_attention import CLASS_MAP
from cxr_attention.core.study.open_blanking import NO_OUTLINES
from cxr_attention.core.training.timeline import has_timeline

st.title("Attention over training")
st.caption(
    "During training, `fit` keeps the maps of a few validation films after every epoch. Slide "
    "through the epochs to watch the attention find the lesion, or fail to: a spatial gate's map "
    "(one for every label), a class-specific head's map of the film's finding, and Grad-CAM. "
    "The white circle marks where each map peaks (a class map: where its log-odds do, since its "
    "probability can be 1.0 over a whole region)."
)
registry = components.registry()
runs = [e for e in registry.entries if has_timeline(e.run.path)]
if not runs:
    st.info(
        "No run here recorded a timeline. Runs trained by this version of `cxr-attention fit` "
        "keep one when their validation split has films with truth (every phantom does; "
        "ChestX-ray14's validation split has no boxes)."
    )
    st.stop()
# class-specific maps first (they can find the lesion), then the gates, then the baselines
names = [e.name for e in sorted(runs, key=lambda e: (not e.class_specific, not e.attention))]
if st.session_state.get(S.TIMELINE_RUN) not in names:
    st.session_state[S.TIMELINE_RUN] = names[0]
st.selectbox(
    "Run",
    names,
    key=S.TIMELINE_RUN,
    format_func=lambda n: components.run_label(registry.by_name(n)),
)
entry = registry.by_name(st.session_state[S.TIMELINE_RUN])
components.phantom_notice([entry])
timeline = models.timeline(entry)
if timeline is None or not timeline.epochs:
    st.info("This run has not finished an epoch yet.")
    st.stop()

images = timeline.images
choices = list(range(len(images.image_ids)))
if st.session_state.get(S.TIMELINE_IMAGE) not in choices:
    st.session_state[S.TIMELINE_IMAGE] = 0
st.radio(
    "Film",
    choices,
    key=S.TIMELINE_IMAGE,
    horizontal=True,
    format_func=lambda i: f"{images.findings[i]} ({images.image_ids[i]})",
)
image = st.session_state[S.TIMELINE_IMAGE]
epochs = [m.epoch for m in timeline.epochs]
if st.session_state.get(S.TIMELINE_EPOCH) not in epochs:
    st.session_state[S.TIMELINE_EPOCH] = epochs[-1]
if len(epochs) > 1:
    st.select_slider("Epoch", epochs, key=S.TIMELINE_EPOCH)
epoch = st.session_state[S.TIMELINE_EPOCH]
maps = tv.epoch_maps(timeline, epoch)

truth = images.truth[image]
if images.views is not None:
    view = images.views[image]
else:  # a zoo of real films ships which films, never the films: read them from the collection
    index, why = cases.dataset_for(entry)
    if index is None:
        st.info(f"The films of this timeline are not shown: {why}.")
        st.stop()
    view = cases.film_view(index, images.image_ids[image], truth.shape[-1])
size = view.shape[-1]
outlined = bool(images.truth.any())  # collections without outlines (real films) have none
outline = tv.truth_outline(truth) if outlined else []
finding = images.findings[image]
if not outlined:
    st.caption(f"{NO_OUTLINES.capitalize()}: the maps are shown, with no lesion to meet.")
probability = float(maps.probabilities[image, list(images.labels).index(finding)])
panels = tv.map_panels(maps, image, finding)
if CLASS_MAP in maps.gates and CLASS_MAP not in maps.orders:
    st.caption(
        "This run's timeline was recorded before the class map's log-odds were kept: its peak is "
        "taken from the probability, the centre of the places tied at 1.0 where the head is sure."
    )
columns = st.columns(len(panels) + 1)
with columns[0]:
    st.plotly_chart(
        figures.overlay_figure(
            view, None, contours=outline, title=f"{finding}" + (" (outlined)" if outlined else "")
        ),
        key="timeline-film",
    )
    st.metric(f"P({finding}) after epoch {epoch}", f"{probability:.2f}")
for column, panel in zip(columns[1:], panels, strict=True):
    heat = tv.map_in_view(panel.small, size)
    order = tv.order_in_view(maps, panel.name, image, size)
    focus = tv.lesion_focus(heat, truth, order) if outlined else None
    zrange = panel.zrange or (float(heat.min()), float(heat.max()))
    with column:
        st.plotly_chart(
            figures.overlay_figure(
                view,
                heat,
                zrange=zrange,
                contours=outline,
                peak=peak_of(heat, order),
                colorbar_title=panel.colorbar,
                title=f"{panel.title}<br><sup>{panel.small.shape[0]}x{panel.small.shape[1]} map"
                + (
                    f", {'peak on the lesion' if focus.points_at_lesion else 'peak elsewhere'}"
                    if focus
                    else ""
                )
                + "</sup>",
            ),
            key=f"timeline-{panel.name or 'gradcam'}",
        )
        if panel.name:
            where = (
                f"; mean {focus.inside:.2f} on the lesion, {focus.outside:.2f} elsewhere"
                if focus
                else ""
            )
            st.caption(
                f"{tv.map_words(panel.name).capitalize()} {heat.min():.2f}-{heat.max():.2f}"
                + where
                + "."
            )

gates = sorted(maps.gates)
if gates and outlined:
    if st.session_state.get(S.TIMELINE_MAP) not in gates:
        st.session_state[S.TIMELINE_MAP] = gates[-1]
    if len(gates) > 1:
        st.radio("Map", gates, key=S.TIMELINE_MAP, horizontal=True, format_func=tv.map_name)
    gate = st.session_state[S.TIMELINE_MAP]
    what = tv.map_words(gate)
    st.plotly_chart(
        tv.focus_figure(
            tv.focus_curves(timeline, image, gate),
            title=f"This film over the epochs ({tv.map_name(gate)})",
            what=what,
        ),
        key="timeline-curves",
    )
    hits = tv.pointing_by_epoch(timeline, gate)
    st.caption(
        f"Films of this timeline whose {what} peaks on their lesion, by epoch: "
        + ", ".join(f"{e}: {share:.0%}" for e, share in hits)
    )
