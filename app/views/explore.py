"""Explore an image: for one backbone, the paper's gate, the class map and Grad-CAM side by side
(the mechanisms view), backbones side by side with attention switched on and off, or a model with
the lung prior beside its teaching twin without it; the lung fields outlined on every map."""

import streamlit as st

from cxr_attention.app import columns as col
from cxr_attention.app import components, hit_rates, images, settings
from cxr_attention.app import explore_panels as panels
from cxr_attention.app import lung_panels as lp
from cxr_attention.app import mechanism_panels as mp
from cxr_attention.app import mechanisms as mech
from cxr_attention.app import prior_panels as pp
from cxr_attention.app import state as S
from cxr_attention.core.errors import CxrError
from cxr_attention.core.models.registry import describe_backbone

VIEWS = {
    "mechanisms": "Mechanisms: gate, class map, Grad-CAM",
    "backbones": "Backbones side by side",
    "prior": "With and without the lung prior",
}

st.title("Explore an image")
registry = components.registry()
backbones, labels = registry.backbones(), registry.labels()
notice = st.container()  # the phantom notice goes on top, once the models are known
found = images.list_samples(settings.samples_dir())
default, rule = hit_rates.median_sample(found, hit_rates.class_map_rates(registry))
default = default or images.default_sample(settings.samples_dir(), found)
study = panels.pick_image(found, default, labels)
if rule and study.sample is not None and study.name == default.name:
    st.caption(rule)
pairs = {teaching.name: (prior, teaching) for prior, teaching in registry.teaching_pairs()}
views = [v for v in VIEWS if v != "prior" or pairs]
if st.session_state[S.VIEW] not in views:
    st.session_state[S.VIEW] = views[0]
st.radio("View", views, key=S.VIEW, format_func=VIEWS.get, horizontal=True)
options = panels.PanelOptions(
    opacity=st.session_state[S.OPACITY],
    shared_scale=st.session_state[S.SHARED_SCALE],
    show_difference=st.session_state[S.SHOW_DIFFERENCE],
    show_truth=st.session_state[S.SHOW_TRUTH],
    show_lungs=st.session_state[S.SHOW_LUNGS],
)
if options.show_lungs:
    lp.lung_notice(col.study_fields(study))

if st.session_state[S.VIEW] == "mechanisms":
    backbone = mech.default_backbone(registry, st.session_state[S.MECHANISMS_BACKBONE])
    st.session_state[S.MECHANISMS_BACKBONE] = backbone
    choices = mech.gradcam_choices(registry, backbone)
    st.session_state[S.GRADCAM_OF] = mech.default_gradcam_of(
        choices, st.session_state[S.GRADCAM_OF]
    )
    pick_box, label_box, gradcam_box, opacity_box = st.columns(4)
    pick_box.selectbox(
        "Backbone",
        backbones,
        key=S.MECHANISMS_BACKBONE,
        format_func=lambda b: describe_backbone(b).title,
    )
    label_box.selectbox("Label to explain", labels, key=S.LABEL)
    label_box.caption("The gate map is the same for every label: the label changes the others.")
    gradcam_box.selectbox(
        "Grad-CAM of",
        choices,
        key=S.GRADCAM_OF,
        format_func=lambda v: registry.best(backbone, mech.variant_kind(v)).title,
    )
    opacity_box.slider("Overlay opacity", 0.0, 1.0, step=0.05, key=S.OPACITY)
    try:
        with st.spinner("Scoring…"):
            row = mech.build_panels(
                registry,
                backbone,
                study,
                st.session_state[S.LABEL],
                st.session_state[S.GRADCAM_OF],
                options.show_lungs,
            )
    except CxrError as exc:
        st.error(str(exc))
        st.stop()
    mp.mechanism_row(row, study, options.opacity, options.show_truth)
    mp.reading(row, st.session_state[S.LABEL], study)
    mp.details(row)
    results = list({p.column.entry.name: p.column for p in row if p.column}.values())
elif st.session_state[S.VIEW] == "prior":
    if st.session_state.get(S.PRIOR_PAIR) not in pairs:
        st.session_state[S.PRIOR_PAIR] = next(iter(pairs))
    pair_box, label_box, method_box, opacity_box = st.columns(4)
    pair_box.selectbox(
        "Models", list(pairs), key=S.PRIOR_PAIR, format_func=lambda n: pp.pair_label(pairs[n])
    )
    label_box.selectbox("Label to explain", labels, key=S.LABEL)
    method_box.selectbox(
        "Map", list(pp.METHOD_CHOICES), key=S.PRIOR_METHOD, format_func=pp.METHOD_CHOICES.get
    )
    opacity_box.slider("Overlay opacity", 0.0, 1.0, step=0.05, key=S.OPACITY)
    st.caption(
        "The same film before two models of one backbone and one attention: the left reads the "
        "lung fields alone (trained with the lung prior), the right was trained without it and "
        "sees the whole film. The dashed outline is the lung fields on each map."
    )
    pair = pairs[st.session_state[S.PRIOR_PAIR]]
    with st.spinner("Scoring…"):
        shown = pp.pair_columns(
            registry, pair, study, st.session_state[S.LABEL], st.session_state[S.PRIOR_METHOD]
        )
    pp.pair_row(pair, shown, study, options.opacity, options.show_truth)
    results = [c for c in shown if not isinstance(c, str)]
else:
    st.session_state[S.BACKBONES] = [b for b in st.session_state[S.BACKBONES] if b in backbones]
    st.multiselect(
        "Backbones, one column each",
        backbones,
        key=S.BACKBONES,
        format_func=lambda b: describe_backbone(b).title,
    )
    label_box, method_box, opacity_box, switch_box = st.columns(4)
    label_box.selectbox("Label to explain", labels, key=S.LABEL)
    label_note = label_box.empty()  # says so when a map shown is the same for every label
    method_box.selectbox(
        "Explanation", list(col.METHODS), key=S.METHOD, format_func=col.METHODS.get
    )
    opacity_box.slider("Overlay opacity", 0.0, 1.0, step=0.05, key=S.OPACITY)
    switch_box.toggle(
        "Shared colour scale",
        key=S.SHARED_SCALE,
        help="One colour range for every column (raw map values), so a weaker map looks weaker; "
        "gates and class maps keep their own 0-1 scale.",
    )
    switch_box.toggle("Difference attention on − off", key=S.SHOW_DIFFERENCE)
    chosen = [b for b in st.session_state[S.BACKBONES] if b in backbones]
    if not chosen:
        st.info("Choose at least one backbone.")
        st.stop()
    results = panels.backbone_columns(
        registry, chosen, study, st.session_state[S.LABEL], st.session_state[S.METHOD], options
    )
    if note := panels.class_agnostic_note(results):
        label_note.caption(note)
    if any(r.lungs for r in results):
        st.caption(lp.LUNG_NOTE)

with notice:
    components.phantom_notice([r.entry for r in results])
    panels.unlike_training_notice(results)
st.divider()
size = results[0].entry.image_size if results else registry.entries[0].image_size
panels.image_row(
    study,
    size,
    options.show_truth,
    st.session_state[S.SHOW_IDENTIFIERS],
    results[0] if results else None,
)
if results:
    st.download_button(
        "Download predictions CSV",
        col.predictions_frame(study, results).to_csv(index=False),
        file_name=f"{study.name}_predictions.csv",
        mime="text/csv",
    )
st.caption(components.NOT_A_DEVICE)
