"""The comparison report as Markdown (report.md): every table, no plots (see report.html)."""

from __future__ import annotations

from cxr_attention.core.report.document import ComparisonReport
from cxr_attention.core.report.tables import Table, cell_text

PHANTOM_WARNING = (
    "**Synthetic data.** These runs were trained and evaluated on the phantom, synthetic "
    "radiographs made by this project. Their numbers show the pipeline works; they say nothing "
    "about performance on real chest radiographs and are not comparable with the paper's."
)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    """A GitHub-flavoured Markdown table with its title (bold) and note (italic)."""
    lines = [f"**{table.title}**", ""]
    lines.append("| " + " | ".join(_escape(c) for c in table.columns) + " |")
    lines.append("|" + "|".join(" --- " for _ in table.columns) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_escape(cell_text(c)) for c in row) + " |")
    if table.note:
        lines += ["", f"*{table.note}*"]
    return "\n".join(lines)


def render_markdown(report: ComparisonReport) -> str:
    """report.md."""
    parts = [f"# {report.title}", ""]
    parts.append(f"**Data:** {report.data}")
    parts.append("")
    if report.phantom:
        parts += [f"> {PHANTOM_WARNING}", ""]
    parts.append(
        f"Generated {report.created}. ROC curves are in report.html beside this file; "
        "comparison.json holds the same numbers."
    )
    parts.append("")
    for note in report.notes:
        parts.append(f"- Note: {note}")
    if report.notes:
        parts.append("")
    for section in report.sections:
        parts += [f"## {section.title}", ""]
        if section.text:
            parts += [section.text, ""]
        for table in section.tables:
            parts += [markdown_table(table), ""]
    return "\n".join(parts).rstrip() + "\n"
