"""Failure cases: the most confident false positives and false negatives of a run, as a gallery."""

import streamlit as st

from cxr_attention.app import cases, components, failures, models
from cxr_attention.app import state as S
from cxr_attention.core.errors import CxrError
from cxr_attention.core.runs import METRICS, PREDICTIONS

st.title("Failure cases")
registry = components.registry()
runs = registry.evaluated()
if not runs:
    st.info("No evaluated runs yet: run `cxr-attention evaluate RUN` (the demo does it for you).")
    st.stop()
if st.session_state[S.FAIL_RUN] not in [e.name for e in runs]:
    st.session_state[S.FAIL_RUN] = runs[0].name
pick_run, pick_label, pick_group = st.columns([2, 1, 1])
pick_run.selectbox(
    "Run",
    [e.name for e in runs],
    key=S.FAIL_RUN,
    format_func=lambda n: components.run_label(registry.by_name(n)),
)
entry = registry.by_name(st.session_state[S.FAIL_RUN])
components.phantom_notice([entry])
st.caption(f"Attention: {entry.attention_summary}.")
try:
    predictions = models.run_file(entry, PREDICTIONS)
    metrics = models.run_file(entry, METRICS)
except CxrError as exc:
    st.error(str(exc))
    st.stop()
if st.session_state.get(S.FAIL_LABEL) not in entry.labels:
    st.session_state[S.FAIL_LABEL] = entry.labels[0]
pick_label.selectbox("Label", list(entry.labels), key=S.FAIL_LABEL)
groups = failures.subgroup_options(predictions)
if st.session_state.get(S.FAIL_SUBGROUP) not in groups:
    st.session_state[S.FAIL_SUBGROUP] = failures.ALL
pick_group.selectbox("Subgroup", groups, key=S.FAIL_SUBGROUP)
scores_box, count_box = st.columns([3, 1])
scores_box.slider("Score range", 0.0, 1.0, key=S.FAIL_SCORES, step=0.01)
count_box.number_input("Images per gallery", 1, 48, key=S.FAIL_COUNT)

label = st.session_state[S.FAIL_LABEL]
threshold = failures.label_threshold(metrics, {}, label)
found = failures.failure_cases(
    predictions,
    label,
    threshold,
    st.session_state[S.FAIL_SUBGROUP],
    tuple(st.session_state[S.FAIL_SCORES]),
    int(st.session_state[S.FAIL_COUNT]),
)
st.caption(
    f"Validation threshold for {label}: {threshold:.3f}. "
    "False positive: no finding in the label file, score at or above the threshold."
)
index, why = cases.dataset_for(entry)
if index is None:
    st.caption(f"Images not shown: {why}.")

tab_fp, tab_fn = st.tabs(
    [
        f"False positives ({len(found.false_positives)})",
        f"False negatives ({len(found.false_negatives)})",
    ]
)
for tab, table, kind in (
    (tab_fp, found.false_positives, "fp"),
    (tab_fn, found.false_negatives, "fn"),
):
    with tab:
        if table.empty:
            st.caption("None with these filters.")
            continue
        if index is None:
            st.dataframe(table, hide_index=True, width="stretch")
            continue
        grid = st.columns(4)
        for i, row in enumerate(table.itertuples(index=False)):
            with grid[i % 4]:
                thumb = cases.thumbnail(index, row.image_id)
                if thumb is not None:
                    st.image(thumb, caption=f"{row.image_id} · p={row.score:.2f}")
                if st.button("Open", key=f"open-{kind}-{row.image_id}"):
                    st.session_state[S.FAIL_OPEN] = row.image_id

opened = st.session_state.get(S.FAIL_OPEN)
if index is not None and opened:
    st.subheader(f"{opened}")
    try:
        study = cases.study_for(index, opened)
        # The model's own map (a gate's, or a class head's map of the label) beside Grad-CAM; a
        # baseline has none: its Grad-CAM beside Integrated Gradients instead.
        own = cases.own_method(entry)
        methods = (own, "gradcam") if own == "attention" else (own, "integrated_gradients")
        for method, slot in zip(methods, st.columns(2), strict=True):
            with slot:
                figure = cases.case_figure(entry, study, label, method)
                st.plotly_chart(figure, key=f"case-{method}")
        truth = ", ".join(study.sample.labels) if study.sample else ""
        st.markdown(f"**Label file says:** {truth or 'no finding'}")
    except CxrError as exc:
        st.error(str(exc))
