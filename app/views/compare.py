"""Compare models: AUC table with CIs, each attention variant minus its baseline (DeLong, with its
confidence interval), the attention study (where each map points, from study.json), each map held
to the lung fields, ROC, calibration, subgroups. The backbones stand side by side."""

import streamlit as st

from cxr_attention.app import comparison, components, figures, lung_sections, models
from cxr_attention.app import state as S
from cxr_attention.core.errors import CxrError
from cxr_attention.core.report.words import PHANTOM_ATTENTION_NOTE
from cxr_attention.core.study import STUDY
from cxr_attention.core.study.open_blanking import NO_OUTLINES

st.title("Compare models")
registry = components.registry()
candidates = registry.evaluated()
if not candidates:
    st.info(
        "No evaluated runs yet: run `cxr-attention evaluate RUN` on each run folder to write "
        "predictions.csv and metrics.json (`cxr-attention demo` does it for the demo zoo)."
    )
    st.stop()

names = [e.name for e in candidates]
st.session_state[S.COMPARE_RUNS] = [n for n in st.session_state[S.COMPARE_RUNS] if n in names]
st.multiselect(
    "Runs",
    names,
    key=S.COMPARE_RUNS,
    format_func=lambda n: components.run_label(registry.by_name(n)),
)
chosen = [e for e in candidates if e.name in st.session_state[S.COMPARE_RUNS]]
runs, problems = models.evaluated(registry.side_by_side(chosen))
for problem in problems:
    st.error(problem)
if not runs:
    st.info("Choose at least one evaluated run.")
    st.stop()
components.phantom_notice([r.entry for r in runs])
if not comparison.same_test_data(runs):
    st.warning(
        "These runs were evaluated on different data or splits: their AUCs are not comparable."
    )

st.subheader("AUC per class, 95% CI (patient bootstrap)")
st.dataframe(comparison.auc_table(runs), width="stretch")

st.subheader("Attention minus baseline")
pairs = comparison.attention_pairs(runs)
if not pairs:
    st.caption("Select an attention run and the baseline of the same backbone to compare them.")
else:
    st.caption(
        "Each dot is a difference in AUC, its whisker the DeLong 95% confidence interval, on an "
        f"axis of at least ±{figures.DIFFERENCE_SPAN} around the zero line: a whisker across zero "
        "is no evidence of an effect."
    )
delong = {}
backbones = list(dict.fromkeys(a.entry.backbone for a, _ in pairs))
slots = dict(zip(backbones, st.columns(len(backbones)) if backbones else [], strict=True))
for attention, baseline in pairs:
    with slots[attention.entry.backbone]:
        try:
            table = comparison.paired_delong(attention, baseline)
        except CxrError as exc:
            st.error(str(exc))
            continue
        delong[attention.name] = table
        if table["difference"].isna().all():
            st.caption(
                f"{attention.title} vs baseline: no label has two positive and two negative "
                "test images, so DeLong's test is undefined for every label."
            )
            continue
        st.markdown(comparison.effect_in_words(attention, baseline, table))
        title = f"{attention.title} − baseline<br><sup>{table.attrs['n_images']} shared test images"
        st.plotly_chart(
            figures.auc_difference_figure(
                table["label"],
                table["difference"],
                table["ci_low"],
                table["ci_high"],
                table["p_holm"],
                title=title + ", DeLong 95% CI, Holm-adjusted p</sup>",
            ),
            key=f"delta-{attention.name}-{baseline.name}",
        )
        with st.expander("Table: AUCs, DeLong CI, p and Holm-adjusted p"):
            st.dataframe(table.round(4), hide_index=True, width="stretch")

if pairs and any(r.entry.is_phantom for r in runs):
    st.info(PHANTOM_ATTENTION_NOTE)

blanked = comparison.blanking_frame(runs)
if not blanked.empty:
    st.subheader("Does the score depend on what each map shows? Blanking")
    st.caption(
        f"{NO_OUTLINES.capitalize()}. Instead, on the held-out films with the finding, each map's "
        "highest pixels are set to black and the probability is read again, against a region of "
        "the same shape at a random place (`core.study.open_blanking`)."
    )
    st.dataframe(blanked.round(3), hide_index=True, width="stretch")

entries, study_problems = comparison.study_entries(runs, delong)
lung_figures, _ = lung_sections.gather([r.entry for r in runs])
if entries or not lung_figures:
    st.subheader("Where each map points: the attention study")
for problem in study_problems:
    st.error(problem)
if entries:
    st.dataframe(comparison.study_frame(entries), width="stretch")
    for paragraph in comparison.study_words(entries):
        st.markdown(paragraph)
    unstudied = [r.name for r in runs if not r.entry.has(STUDY)]
    if unstudied:
        st.caption(f"Not studied yet: {', '.join(unstudied)} (`cxr-attention study RUN`).")
elif not lung_figures and not blanked.empty:
    st.caption(f"{NO_OUTLINES.capitalize()}: the study's pointing figures cannot be measured.")
elif not lung_figures:
    st.caption(
        "No selected run has a study yet: `cxr-attention study RUN...` scores each map against "
        "the lesions beside a random control and writes RUN/study.json."
    )
if lung_figures:  # films without lesion outlines too: each map against the lung fields
    st.subheader("Where each map points: inside the lungs?")
    lung_sections.lung_section(registry, [r.entry for r in runs], key="compare-lungs")

st.subheader("ROC curves")
labels = [label for label in registry.labels() if any(label in r.labels for r in runs)]
if st.session_state.get(S.COMPARE_LABEL) not in labels:
    testable = comparison.testable_labels(runs)
    st.session_state[S.COMPARE_LABEL] = testable[0] if testable else labels[0]
left, right = st.columns([1, 2])
left.selectbox("Label", labels, key=S.COMPARE_LABEL)
right.slider(
    "Zoom: largest false-positive rate shown (early lift)",
    0.05,
    1.0,
    step=0.05,
    key=S.COMPARE_MAX_FPR,
)
label = st.session_state[S.COMPARE_LABEL]
curves = comparison.roc_curves(runs, label)
if curves:
    st.plotly_chart(
        figures.roc_figure(curves, st.session_state[S.COMPARE_MAX_FPR], title=f"ROC · {label}"),
        key="roc",
    )
else:
    st.caption(f"No run has both positive and negative test images for {label}.")

st.subheader("Calibration")
reliability = comparison.reliability_curves(runs, label)
if reliability:
    st.plotly_chart(
        figures.calibration_figure(reliability, title=f"Reliability · {label}"), key="calibration"
    )
else:
    st.caption("metrics.json holds no reliability curve for this label.")

st.subheader("Subgroups (macro AUC)")
subgroups = comparison.subgroup_frame(runs)
if subgroups.empty:
    st.caption("metrics.json holds no subgroup results.")
else:
    st.dataframe(subgroups, width="stretch")
