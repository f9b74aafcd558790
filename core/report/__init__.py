"""The comparison report of `cxr-attention compare`: tables from run folders, Markdown and HTML.

- results: the evaluated runs (metrics.json, predictions.csv, localization.json)
- tables: AUC, early-lift, paper and run tables as plain data; pairs: each attention variant minus
  its backbone's baseline
- localization, roc: localization tables and ROC curves; paper: published numbers
- study, study_words: the mechanism study's tables (from study.json) and its plain words
- render_md, render_html: the two renderings; compare: `compare_runs(run_dirs, out_dir)`
"""

from cxr_attention.core.report.compare import (
    ComparisonReport,
    ReportPaths,
    build_report,
    compare_runs,
)

__all__ = ["ComparisonReport", "ReportPaths", "build_report", "compare_runs"]
