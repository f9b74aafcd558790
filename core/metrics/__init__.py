"""Evaluation metrics for multi-label chest-radiograph classifiers.

Arrays are (n,) for one label or (n, L) with columns in label order; y_true is 0/1, y_score a
score (a sigmoid probability where calibration is concerned). Undefined values are NaN, never an
exception: an AUC of a label with one class, a CI of a resample-starved statistic.

- auc: per-class, micro and macro ROC AUC, ROC curve points
- bootstrap: 95% CIs resampled by patient (cluster bootstrap, vectorised)
- delong: DeLong's test for paired AUCs (Sun & Xu 2014) and Holm's correction
- early_lift: partial AUC at FPR <= 0.1 (raw and McClish), sensitivity at fixed specificity
- thresholds: Youden / F1 thresholds chosen on validation, applied on test
- calibration: Brier score, ECE, reliability curve
- subgroups: AUC by sex, age band and view
- summary: metrics.json from predictions.csv; compare: two runs on the same images
"""

from cxr_attention.core.metrics.auc import (
    RocCurve,
    macro_auc,
    micro_auc,
    per_class_auc,
    roc_auc,
    roc_curve_points,
)
from cxr_attention.core.metrics.bootstrap import (
    AucBootstrap,
    ClusterBootstrap,
    bootstrap_auc,
    percentile_ci,
)
from cxr_attention.core.metrics.calibration import (
    Reliability,
    brier_score,
    calibration_summary,
    expected_calibration_error,
    reliability_curve,
)
from cxr_attention.core.metrics.compare import (
    align_predictions,
    compare_runs_bootstrap,
    compare_runs_delong,
)
from cxr_attention.core.metrics.delong import (
    DeLongResult,
    delong_auc_ci,
    delong_covariance,
    delong_test,
    holm_adjust,
)
from cxr_attention.core.metrics.early_lift import (
    partial_auc,
    sensitivity_at_specificity,
    standardized_partial_auc,
)
from cxr_attention.core.metrics.subgroups import AGE_BANDS, age_bands, subgroup_auc, subgroup_table
from cxr_attention.core.metrics.summary import (
    prediction_labels,
    predictions_arrays,
    summarize_predictions,
)
from cxr_attention.core.metrics.thresholds import (
    OperatingPoint,
    apply_threshold,
    apply_thresholds,
    choose_thresholds,
    f1_threshold,
    youden_threshold,
)

__all__ = [
    "AGE_BANDS",
    "AucBootstrap",
    "ClusterBootstrap",
    "DeLongResult",
    "OperatingPoint",
    "Reliability",
    "RocCurve",
    "age_bands",
    "align_predictions",
    "apply_threshold",
    "apply_thresholds",
    "bootstrap_auc",
    "brier_score",
    "calibration_summary",
    "choose_thresholds",
    "compare_runs_bootstrap",
    "compare_runs_delong",
    "delong_auc_ci",
    "delong_covariance",
    "delong_test",
    "expected_calibration_error",
    "f1_threshold",
    "holm_adjust",
    "macro_auc",
    "micro_auc",
    "partial_auc",
    "per_class_auc",
    "percentile_ci",
    "prediction_labels",
    "predictions_arrays",
    "reliability_curve",
    "roc_auc",
    "roc_curve_points",
    "sensitivity_at_specificity",
    "standardized_partial_auc",
    "subgroup_auc",
    "subgroup_table",
    "summarize_predictions",
    "youden_threshold",
]
