"""Explore an image: upload or pick a sample, compare backbones side by side, switch attention."""

import streamlit as st

from app import columns as col
from app import components, images, settings
from app import explore_panels as panels
from app import state as S
from core.errors import CxrError
from core.models.registry import describe_backbone

st.title("Explore an image")
registry = components.registry()
backbones, labels = registry.backbones(), registry.labels()
notice = st.container()  # the phantom notice goes on top, once the models are known
study = panels.pick_image(images.list_samples(settings.samples_dir()))
st.session_state[S.BACKBONES] = [b for b in st.session_state[S.BACKBONES] if b in backbones]

st.multiselect(
    "Backbones, one column each",
    backbones,
    key=S.BACKBONES,
    format_func=lambda b: describe_backbone(b).title,
)
label_box, method_box, opacity_box, switch_box = st.columns(4)
label_box.selectbox("Label to explain", labels, key=S.LABEL)
method_box.selectbox("Explanation", list(col.METHODS), key=S.METHOD, format_func=col.METHODS.get)
opacity_box.slider("Overlay opacity", 0.0, 1.0, step=0.05, key=S.OPACITY)
switch_box.toggle(
    "Shared colour scale",
    key=S.SHARED_SCALE,
    help="One colour range for every column (raw map values), so a weaker map looks weaker.",
)
switch_box.toggle("Difference attention on − off", key=S.SHOW_DIFFERENCE)
chosen = [b for b in st.session_state[S.BACKBONES] if b in backbones]
if not chosen:
    st.info("Choose at least one backbone.")
    st.stop()

options = panels.PanelOptions(
    opacity=st.session_state[S.OPACITY],
    shared_scale=st.session_state[S.SHARED_SCALE],
    show_difference=st.session_state[S.SHOW_DIFFERENCE],
    show_truth=st.session_state[S.SHOW_TRUTH],
)
slots = st.columns(len(chosen))
results: list[col.Column] = []
heads = {}
for backbone, slot in zip(chosen, slots, strict=True):
    with slot:
        heads[backbone] = st.container()  # title and provenance, above the switches
        attention, ablate = panels.column_switches(registry, backbone)
        try:
            with st.spinner("Scoring…"):
                result = col.build_column(
                    registry,
                    backbone,
                    attention,
                    ablate,
                    study,
                    st.session_state[S.LABEL],
                    st.session_state[S.METHOD],
                    with_counterpart=options.show_difference,
                )
        except CxrError as exc:
            st.error(str(exc))
            continue
        if result is not None:
            results.append(result)

with notice:
    components.phantom_notice([r.entry for r in results])
    panels.unlike_training_notice(results)
ranges = col.colour_ranges(results, options.shared_scale)
for result in results:
    with slots[chosen.index(result.backbone)]:
        panels.column_panel(result, study, options, ranges[result.backbone], heads[result.backbone])

st.divider()
size = results[0].entry.image_size if results else registry.entries[0].image_size
panels.image_row(study, size, options.show_truth, st.session_state[S.SHOW_IDENTIFIERS])
if results:
    st.download_button(
        "Download predictions CSV",
        col.predictions_frame(study, results).to_csv(index=False),
        file_name=f"{study.name}_predictions.csv",
        mime="text/csv",
    )
st.caption(components.NOT_A_DEVICE)
