"""The report as one self-contained HTML page: inline CSS, figures as base64 SVG images, no scripts,
nothing fetched from the network. Pure: values in, a string out.
"""

from __future__ import annotations

import base64
import math
from html import escape
from typing import Sequence

from planner.plan import Plan
from planner.report.explain import Change, Explanation
from planner.report.whatif import AXIS_LABEL, WhatIfSweep, objective_words

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;color:#222;
line-height:1.4;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.8em} h3{font-size:1em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em} th,td{border:1px solid #ddd;padding:.25em .6em;
text-align:right} th{background:#f4f4f4} td.l,th.l{text-align:left}
tr.binding td{background:#fff1e6;font-weight:600}
.lead{font-size:1.05em} .muted{color:#666;font-size:.9em} .note{background:#fffbe6;border-left:4px solid #e6b800;
padding:.3em .8em;margin:.4em 0}
figure{margin:1em 0} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#444}
.cheapest{background:#e8f5e9;border-left:4px solid #2e7d32;padding:.4em .8em}
"""


def _num(value: float, digits: int = 4) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    return f"{value:.{digits}g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[int] = (0,),
           row_class: Sequence[str] | None = None) -> str:
    """A table; columns in ``left`` (text) are left-aligned, the others (numbers) right-aligned."""
    cls = lambda i: ' class="l"' if i in left else ""
    head = "".join(f"<th{cls(i)}>{escape(h)}</th>" for i, h in enumerate(header))
    body = []
    for k, row in enumerate(rows):
        attr = f' class="{row_class[k]}"' if row_class and row_class[k] else ""
        body.append(f"<tr{attr}>" + "".join(f"<td{cls(i)}>{escape(str(v))}</td>" for i, v in enumerate(row)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def plan_title(plan: Plan) -> str:
    return f"Plan for '{plan.pipeline}' at {plan.arrival_rps:g} requests/s under a p99 SLO of {plan.slo_ms:g} ms"


def _summary(plan: Plan) -> str:
    proven = "proven optimal" if plan.solver.status == "optimal" else f"NOT proven optimal (gap {plan.solver.gap})"
    lead = (f"<p class='lead'>Cost <b>{plan.cost_usd_per_hour:.4g} USD/h</b>, accuracy <b>{plan.accuracy:.4f}</b> "
            f"({escape(plan.accuracy_aggregation)} over stages), predicted p99 <b>{plan.predicted_p99_ms:.4g} ms</b> "
            f"against the SLO of {plan.slo_ms:g} ms; objective: {escape(objective_words(plan.objective))}; "
            f"{escape(plan.solver.name)}: {proven}.</p>")
    rows = [(s.stage, s.variant, s.hardware, s.batch_size, _num(s.batch_timeout_ms), s.replicas,
             f"{s.utilization:.2f}", _num(s.predicted_latency_ms),
             f"{_num(s.latency_fill_ms)} + {_num(s.latency_wait_ms)} + {_num(s.latency_service_ms)}",
             f"{s.accuracy:.4f}", f"{s.usd_per_hour:.4g}") for s in plan.stages]
    table = _table(["stage", "variant", "hardware", "batch", "timeout (ms)", "replicas", "utilisation",
                    "p99 (ms)", "fill + wait + service (ms)", "accuracy", "USD/h"], rows, left=(0, 1, 2))
    prov = plan.provenance
    made_from = ", ".join(f"{k} {v.get('file')} (sha256 {str(v.get('sha256'))[:12]})" for k, v in sorted(prov.items())
                          if isinstance(v, dict) and "file" in v)
    version = prov.get("pipeplan_version", "?")
    return lead + table + f"<p class='muted'>Made from {escape(made_from or 'unrecorded inputs')} by pipeplan " \
                          f"{escape(str(version))}.</p>"


def change_text(change: Change, plan: Plan) -> str:
    """One line describing a change and what it buys (shared with ``pipeplan explain``)."""
    better = change.plan
    direction = "raise" if change.to_value > change.from_value else "lower"
    return (f"{direction} {change.subject} from {_num(change.from_value)} to {_num(change.to_value)} "
            f"{change.unit}".rstrip() + f" ({100 * change.relative_change:.3g}%): cost "
            f"{better.cost_usd_per_hour:.4g} USD/h ({better.cost_usd_per_hour - plan.cost_usd_per_hour:+.4g}), "
            f"accuracy {better.accuracy:.4f} ("
            + ("unchanged" if math.isclose(better.accuracy, plan.accuracy, rel_tol=1e-9)
               else f"{better.accuracy - plan.accuracy:+.4g}") + ")")


def _explanation(explanation: Explanation, plan: Plan) -> str:
    rows = [(c.kind.value, c.subject or "pipeline", _num(c.limit), _num(c.used), _num(c.slack), c.unit or "-",
             "binds" if c.binding else "slack") for c in explanation.constraints]
    classes = ["binding" if c.binding else "" for c in explanation.constraints]
    parts = [f"<p>Objective: {escape(explanation.objective)}. A constraint <b>binds</b> when lifting it lets the "
             "planner find a better plan (one re-solve per constraint).</p>",
             _table(["constraint", "on", "limit", "plan", "slack", "unit", "status"], rows, left=(0, 1, 5, 6), row_class=classes)]
    cheapest = explanation.cheapest_change
    if cheapest is None:
        parts.append("<p class='cheapest'>No constraint binds: no relaxation of these constraints gives a better plan; "
                     "only other variants or hardware would.</p>")
    else:
        parts.append(f"<p class='cheapest'><b>Cheapest change that improves the plan:</b> "
                     f"{escape(change_text(cheapest, plan))}.</p>")
        others = [c for c in explanation.changes if c is not cheapest]
        if others:
            parts.append("<ul>" + "".join(f"<li>{escape(change_text(c, plan))}</li>" for c in others) + "</ul>")
    rows = [(r.stage, r.chosen, _num(r.chosen_usd_per_hour), r.alternative or "none (already the cheapest)",
             _num(r.alternative_usd_per_hour) if r.alternative_usd_per_hour is not None else "-",
             "; ".join(r.violations) or "-") for r in explanation.stages]
    parts.append("<h3>Why each stage runs its option and not the next-cheaper one</h3>")
    parts.append(_table(["stage", "chosen", "USD/h", "next-cheaper option", "USD/h", "what it would break"], rows,
                        left=(0, 1, 3, 5)))
    return "".join(parts)


def _sweep_table(sweep: WhatIfSweep) -> str:
    rows = [(_num(p.value), _num(p.plan.cost_usd_per_hour) if p.plan else "no plan",
             f"{p.plan.accuracy:.4f}" if p.plan else "-", _num(p.plan.predicted_p99_ms) if p.plan else "-",
             ("current" if math.isclose(p.value, sweep.current_value, rel_tol=1e-6) else "")
             + ("" if p.plan else p.reason)) for p in sweep.points]
    return _table([AXIS_LABEL[sweep.kind], "USD/h", "accuracy", "predicted p99 (ms)", "note"], rows, left=(4,))


def figure_html(name: str, title: str, caption: str, svg: bytes) -> str:
    data = base64.b64encode(svg).decode("ascii")
    return (f"<figure id='fig-{escape(name)}'><img class='figure' alt='{escape(title)}' "
            f"src='data:image/svg+xml;base64,{data}'><figcaption><b>{escape(title)}.</b> {escape(caption)}"
            f"</figcaption></figure>")


def render_html(plan: Plan, explanation: Explanation | None, sweeps: Sequence[WhatIfSweep],
                figures: Sequence[tuple[str, str, str, bytes]], notes: Sequence[str]) -> str:
    """The page. ``figures`` are (name, title, caption, svg bytes), in page order; a figure whose
    name starts with ``whatif-`` is placed in the what-if section next to its table."""
    by_name = {f[0]: f for f in figures}
    body = [f"<h1>{escape(plan_title(plan))}</h1>", _summary(plan)]
    body += [f"<p class='note'>{escape(n)}</p>" for n in notes]
    body.append("<h2>Why this plan</h2>")
    body.append(_explanation(explanation, plan) if explanation is not None else
                "<p class='note'>No explanation: it needs the spec, profiles and catalog the plan was made from.</p>")
    for name, title, caption, svg in figures:
        if not name.startswith("whatif-") and name in ("frontier", "breakdown"):
            body.append(figure_html(name, title, caption, svg))
    if sweeps:
        body.append("<h2>What-ifs (each point an optimal re-solve)</h2>")
        for sweep in sweeps:
            key = f"whatif-{sweep.kind.value.replace('_', '-')}"
            if key in by_name:
                body.append(figure_html(*by_name[key]))
            body.append(_sweep_table(sweep))
    rest = [f for f in figures if f[0] not in ("frontier", "breakdown") and not f[0].startswith("whatif-")]
    if rest:
        body.append("<h2>Runs and profiles</h2>")
        body += [figure_html(*f) for f in rest]
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{escape(plan_title(plan))}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
