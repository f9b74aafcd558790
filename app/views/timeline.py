"""Attention over training: the maps of a few validation films after every epoch, on a slider."""

import streamlit as st

from app import components, figures, models
from app import state as S
from app import timeline_view as tv
from core.training.timeline import has_timeline

st.title("Attention over training")
st.caption(
    "During training, `fit` keeps the maps of a few validation films after every epoch. Slide "
    "through the epochs to watch the attention gate (and Grad-CAM) find the lesion, or fail to."
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
names = [e.name for e in runs]
attention_first = sorted(names, key=lambda n: not registry.by_name(n).attention)
if st.session_state.get(S.TIMELINE_RUN) not in names:
    st.session_state[S.TIMELINE_RUN] = attention_first[0]
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

view, truth = images.views[image], images.truth[image]
size = view.shape[-1]
outline = tv.truth_outline(truth)
finding = images.findings[image]
probability = float(maps.probabilities[image, list(images.labels).index(finding)])
panels = [(f"Gate after {name}", maps.gates[name][image], name) for name in sorted(maps.gates)]
panels.append(("Grad-CAM (final features)", maps.gradcam[image], None))
columns = st.columns(len(panels) + 1)
with columns[0]:
    st.plotly_chart(
        figures.overlay_figure(view, None, contours=outline, title=f"{finding} (outlined)"),
        key="timeline-film",
    )
    st.metric(f"P({finding}) after epoch {epoch}", f"{probability:.2f}")
for column, (title, small, gate) in zip(columns[1:], panels, strict=True):
    heat = tv.map_in_view(small, size)
    focus = tv.lesion_focus(heat, truth)
    # Gates keep their own [0, 1] scale (0.5 everywhere = not looking anywhere in particular).
    zrange = (float(heat.min()), float(heat.max())) if gate else (0.0, 1.0)
    with column:
        st.plotly_chart(
            figures.overlay_figure(
                view,
                heat,
                zrange=zrange,
                contours=outline,
                title=f"{title}<br><sup>{small.shape[0]}x{small.shape[1]} map, "
                f"{'peak on the lesion' if focus.points_at_lesion else 'peak elsewhere'}</sup>",
            ),
            key=f"timeline-{title}",
        )
        if gate:
            st.caption(
                f"Gate {heat.min():.2f}-{heat.max():.2f}; mean {focus.inside:.2f} on the lesion, "
                f"{focus.outside:.2f} elsewhere."
            )

gates = sorted(maps.gates)
if gates:
    gate = gates[0] if len(gates) == 1 else st.radio("Gate", gates, horizontal=True)
    st.plotly_chart(
        tv.focus_figure(
            tv.focus_curves(timeline, image, gate), title=f"This film over the epochs ({gate})"
        ),
        key="timeline-curves",
    )
    hits = tv.pointing_by_epoch(timeline, gate)
    st.caption(
        "Films of this timeline whose gate peaks on the lesion, by epoch: "
        + ", ".join(f"{e}: {share:.0%}" for e, share in hits)
    )
