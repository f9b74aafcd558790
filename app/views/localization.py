"""Localization: how well maps point at annotated findings (localization.json), and a gallery;
and, on any film, whether each map peaks inside the lung fields (study.json's in-lung figures and
localization_lungs.json), the backbones side by side."""

import streamlit as st

from cxr_attention.app import cases, components, figures, lung_rates, lung_sections, models
from cxr_attention.app import localization_tables as tables
from cxr_attention.app import state as S
from cxr_attention.core.errors import CxrError
from cxr_attention.core.runs import LOCALIZATION
from cxr_attention.core.study.open_blanking import BLANKING, NO_OUTLINES

st.title("Localization")
registry = components.registry()
candidates = registry.localized()
with_lungs = [e for e in registry.side_by_side() if models.lung_rates(e)[0]]
if with_lungs:
    st.subheader("Inside the lungs: where each map peaks on the held-out films")
    if not candidates:
        st.info(
            f"{NO_OUTLINES.capitalize()} ({registry.collections()[0]}): no map is scored against "
            "a lesion here. Every film has lung fields, though: each map is held to them.",
            icon=":material/pulmonology:",
        )
    components.phantom_notice(with_lungs)
    st.selectbox(
        "In-lung figure",
        list(lung_rates.METRICS),
        key=S.LOC_LUNG_METRIC,
        format_func=lung_rates.METRICS.get,
    )
    lung_sections.lung_section(
        registry, with_lungs, st.session_state[S.LOC_LUNG_METRIC], key="loc-lungs"
    )
    names = [e.name for e in with_lungs]
    if st.session_state.get(S.LOC_LUNG_RUN) not in names:
        st.session_state[S.LOC_LUNG_RUN] = names[0]
    st.markdown("**Gallery: held-out films, each map against the lung fields**")
    st.selectbox(
        "Model",
        names,
        key=S.LOC_LUNG_RUN,
        format_func=lambda n: components.run_label(registry.by_name(n)),
    )
    lung_sections.lung_gallery(registry, registry.by_name(st.session_state[S.LOC_LUNG_RUN]))
    if candidates:
        st.subheader("Against the lesions")
if not candidates and with_lungs:
    st.stop()
if not candidates and registry.entries and all(e.has(BLANKING) for e in registry.entries):
    st.info(
        f"{NO_OUTLINES.capitalize()} ({registry.collections()[0]}): no map is scored against a "
        "lesion here. Compare models shows the blanking check instead: whether the score falls "
        "when what each map attends to is set to black."
    )
    st.stop()
if not candidates:
    st.info(
        "No localization results yet: run `cxr-attention localize RUN --method attention` (and "
        "`--method gradcam`) on an evaluated run; ChestX-ray14 has boxes for 880 test images, the "
        "phantom has masks for every lesion."
    )
    st.stop()

names = [e.name for e in candidates]
st.session_state[S.LOC_RUNS] = [n for n in st.session_state[S.LOC_RUNS] if n in names]
st.multiselect(
    "Runs", names, key=S.LOC_RUNS, format_func=lambda n: components.run_label(registry.by_name(n))
)
chosen = [registry.by_name(n) for n in st.session_state[S.LOC_RUNS]]
results = []
for entry in chosen:
    try:
        results.append((entry.name, models.run_file(entry, LOCALIZATION)))
    except CxrError as exc:
        st.error(str(exc))
if not results:
    st.info("Choose at least one run with localization.json.")
    st.stop()
components.phantom_notice(chosen)

st.selectbox("Metric", list(tables.METRICS), key=S.LOC_METRIC, format_func=tables.METRICS.get)
metric = st.session_state[S.LOC_METRIC]
labels, series = tables.per_class_series(results, metric)
st.plotly_chart(
    figures.grouped_bar_figure(labels, series, tables.METRICS[metric], title="Per class"),
    key="loc-per-class",
)
st.subheader("Overall")
kinds = {e.name: e.kind_title for e in chosen}
st.dataframe(tables.overall_frame(results, kinds), hide_index=True, width="stretch")
st.caption(
    "Pointing game: the map's maximum falls inside a box of the finding. IoBB accuracy: share of "
    "boxes whose thresholded map overlaps them with IoBB above T (Wang et al. 2017). Energy in box: "
    "share of the map's mass inside the boxes. Chance depends on box size; compare with "
    "`--method random`."
)

st.subheader("Gallery: boxes against maps")
if st.session_state[S.LOC_RUN] not in names:
    st.session_state[S.LOC_RUN] = names[0]
st.selectbox(
    "Run", names, key=S.LOC_RUN, format_func=lambda n: components.run_label(registry.by_name(n))
)
entry = registry.by_name(st.session_state[S.LOC_RUN])
st.caption(
    f"Each film with the model's own map: {entry.attention_summary}"
    + ("." if entry.attention else "; a baseline has no attention map, so Grad-CAM.")
)
index, why = cases.dataset_for(entry)
if index is None:
    st.caption(f"Images not shown: {why}.")
    st.stop()
test_ids = set(index.split("test")["image_id"])
boxed = [i for i in dict.fromkeys(index.boxes["image_id"]) if i in test_ids][:6]
if not boxed:
    st.caption("No test image of this dataset has boxes.")
    st.stop()
grid = st.columns(3)
for i, image_id in enumerate(boxed):
    with grid[i % 3]:
        try:
            study = cases.study_for(index, image_id)
            label = index.boxes.loc[index.boxes["image_id"] == image_id, "label"].iloc[0]
            figure = cases.case_figure(entry, study, label, cases.own_method(entry))
            st.plotly_chart(figure, key=f"gal-{image_id}")
        except CxrError as exc:
            st.error(str(exc))
