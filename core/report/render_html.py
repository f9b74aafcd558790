"""The comparison report as one self-contained HTML file: tables and interactive ROC plots.

plotly.js is inlined once in the head (no CDN, no network: the report opens offline and can be
mailed as one file); every figure after it only carries its data.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from cxr_attention.core.report.document import ComparisonReport
from cxr_attention.core.report.render_md import PHANTOM_WARNING
from cxr_attention.core.report.roc import Curve
from cxr_attention.core.report.tables import Table, cell_text

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2em auto;
       max-width: 1200px; color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0.3em 0; }
.note { font-size: 0.85em; color: #555; margin: 0 0 1.2em; }
.warning { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.6em 1em; }
.data { background: #eef4fb; border-left: 4px solid #3a7bd5; padding: 0.6em 1em; }
.plots { display: flex; flex-wrap: wrap; gap: 8px; }
.scroll { overflow-x: auto; }
"""


def html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell_text(c))}</td>" for c in row) + "</tr>"
        for row in table.rows
    )
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return (
        f'<div class="scroll" id="{html.escape(table.key)}"><table>'
        f"<caption>{html.escape(table.title)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>{note}"
    )


def roc_figure(title: str, curves: list[Curve]) -> go.Figure:
    """One class: every run's ROC curve and the chance diagonal."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"dash": "dot", "color": "#aaa"},
            name="chance",
            hoverinfo="skip",
            showlegend=False,
        )
    )
    for curve in curves:
        fig.add_trace(
            go.Scatter(
                x=curve.fpr,
                y=curve.tpr,
                mode="lines",
                name=f"{curve.run} (AUC {curve.auc:.3f})",
            )
        )
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        width=380,
        height=400,
        margin={"l": 45, "r": 10, "t": 40, "b": 40},
        xaxis={"title": "false-positive rate", "range": [0, 1], "constrain": "domain"},
        yaxis={"title": "sensitivity", "range": [0, 1.01], "scaleanchor": "x"},
        legend={"orientation": "h", "y": -0.25, "font": {"size": 9}},
        template="plotly_white",
    )
    return fig


def render_html(report: ComparisonReport) -> str:
    """report.html: self-contained (plotly.js inline once, no external resources)."""
    body = [f"<h1>{html.escape(report.title)}</h1>"]
    body.append(f'<p class="data"><b>Data:</b> {html.escape(report.data)}</p>')
    if report.phantom:
        warning = html.escape(PHANTOM_WARNING.replace("**", ""))
        body.append(f'<p class="warning">{warning}</p>')
    body.append(f"<p>Generated {html.escape(report.created)}.</p>")
    if report.notes:
        body.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in report.notes) + "</ul>")
    for section in report.sections:
        body.append(f'<h2 id="{section.key}">{html.escape(section.title)}</h2>')
        for paragraph in section.text.split("\n\n") if section.text else []:
            body.append(f"<p>{html.escape(paragraph)}</p>")
        body += [html_table(t) for t in section.tables]
    if report.curves:
        body.append('<h2 id="roc">ROC curves</h2><div class="plots">')
        for title, curves in report.curves.items():
            fig = roc_figure(title, curves)
            body.append(
                fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
            )
        body.append("</div>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(report.title)}</title><style>{STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
        f"<body>{''.join(body)}</body></html>\n"
    )
