"""The monitoring report: one self-contained HTML page over a model's monitoring results, oldest first.

`render_report(profile, results, title=...) -> str` and `write_report(path, profile, results, title) -> Path`.
A result is what one monitoring pass recorded (MonitorRun.result): window, drift (DriftReport.to_dict()),
performance, estimated_performance, concept_drift, fairness, utilisation and alerts. Any section may be None
or missing: the page then says why there is nothing to show instead of failing.

`write_drift_report(out, profile, report, title)` writes the page of one file comparison (`mlops drift --html`):
the drift sections only, no monitoring ones.

The page opens with a table of contents (kept in view) and a dataset-level summary (the decision and the rule
that made it). The drift sections (summary, per-feature cards, summary statistics, multivariate, label and
attribution drift) are built in monitoring/report_drift.py, those that depend on the model's task (a
result's "task": a regression model's performance, fairness as gaps between groups) in
monitoring/report_regression.py, the rest here; the plots are drawn by monitoring/report_plots.py (inline
SVG, text kept as text) and the cells formatted by monitoring/report_format.py. Every piece of text taken from the data
is HTML-escaped; matplotlib escapes what it writes into the SVG, and `$` is escaped so that a column name
is never read as mathtext.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from datetime import datetime
from pathlib import Path

from monitoring.compute_report import compute_section
from monitoring.report_drift import (
    DRIFT_METRICS,
    attribution_drift_section,
    dataset_summary,
    decisive_metric,
    feature_anchor,
    features_section,
    label_drift_section,
    multivariate_section,
    series_label,
    severity,
    summary_statistics,
)
from monitoring.report_format import (
    Markup,
    as_float,
    bullet_list,
    e,
    flag,
    marked,
    none_note,
    num,
    pct,
    pct_points,
    section,
    short,
    table,
    warning,
)
from monitoring.report_plots import Plots, baseline_line
from monitoring.report_plots import finite_points as _finite
from monitoring.report_regression import gap_fairness, regression_performance, residual_notes

PERFORMANCE = ("accuracy", "f1", "precision", "recall", "roc_auc")
PLOTTED_PERFORMANCE = {"accuracy": "#1f77b4", "f1": "#ff7f0e"}
ESTIMATE_DISAGREES = 0.05       # CBPE above the measured value by this much: it cannot see what happened
MAX_SERIES = 12                 # drift over time: the features that came nearest their thresholds

CSS = """body{font:14px/1.45 system-ui,sans-serif;color:#222;max-width:1400px;margin:0 auto 2em;padding:0 1em}
h1{font-size:1.5em;margin:.6em 0 .3em}
h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1em;margin:.2em 0}table{border-collapse:collapse;margin:.5em 0}section{scroll-margin-top:3.2em}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}th{background:#f4f4f4}
td.n{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#b52b27;font-weight:600}.ok{color:#2e7d32}
.dec{font-weight:600}.none{color:#666;font-style:italic}.note{color:#555}
.warn{background:#fff4e5;border-left:4px solid #e69500;padding:.4em .7em;font-weight:600}
nav.toc{position:sticky;top:0;z-index:1;background:#fafafa;border-bottom:1px solid #ddd;padding:.35em .6em;
font-size:13px}nav.toc a{margin-right:.9em;white-space:nowrap}nav.toc details{display:inline-block}
nav.toc details[open]{display:block;max-height:40vh;overflow:auto}a{color:#1f5fa8;text-decoration:none}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(310px,1fr));gap:.6em;margin:.6em 0}
.card{padding:.4em .5em;border:1px solid #ddd;border-radius:4px;min-width:0;scroll-margin-top:3.2em}
.card h3{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.card.drifted{border-color:#d9534f}.badge{background:#d9534f;color:#fff;border-radius:3px;padding:0 .4em;font-size:.8em}
svg{max-width:100%;height:auto}svg.hist{width:100%;display:block}svg.hist text{fill:#444}
svg.hist .axis{stroke:#888;stroke-width:1}svg.hist rect.ref{fill:#9aa5b1}
svg.hist rect.cur{fill:#d9534f;fill-opacity:.3;stroke:#d9534f;stroke-width:1}
svg.hist rect.clip{stroke-dasharray:3 2}svg.hist rect.ref.clip{stroke:#667}
.hbars{font-size:12px;margin-top:.3em}
.hb{display:grid;grid-template-columns:8.5em 1fr 7.5em;gap:.4em;align-items:center}
.hn{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}.hp{color:#555;font-variant-numeric:tabular-nums}
.hv i{display:block;height:5px;margin:1px 0;min-width:1px}.hv i.r{background:#9aa5b1}.hv i.c{background:#d9534f}
.key{display:inline-block;width:.9em;height:.9em;vertical-align:-.1em}.key.ref{background:#9aa5b1}
.key.cur{background:#d9534f}"""


def render_report(profile: dict, results: list[dict], *, title: str, compute: dict | None = None) -> str:
    """One HTML document over every result (oldest first); the latest result is shown in detail. `compute`: the
    model's training compute as `mlops status` collects it (a section of its own when given)."""
    profile = profile or {}
    results = [r or {} for r in results]
    latest = results[-1] if results else {}
    drift = latest.get("drift")
    regression = latest.get("task") == "regression"        # results written before tasks: classification
    fairness = latest.get("fairness")
    times = _times(results)
    with Plots() as plots:
        sections = [dataset_summary(drift, label_drift=latest.get("label_drift"),
                                    attribution_drift=latest.get("attribution_drift")) if results else "",
                    _alerts(results, latest),
                    features_section(drift, "features", "Data drift", profile),
                    summary_statistics(drift, profile) if drift else "",
                    features_section(drift, "outputs", "Prediction drift", {})]
        # the newer kinds of drift: a section once any window has recorded them (older records have not)
        if any("multivariate" in (r.get("drift") or {}) for r in results):
            sections.append(multivariate_section([(r.get("drift") or {}).get("multivariate") for r in results],
                                                 times, plots))
        if any("label_drift" in r for r in results):
            sections.append(label_drift_section(latest.get("label_drift")))
        if any("attribution_drift" in r for r in results):
            sections.append(attribution_drift_section(latest.get("attribution_drift")))
        sections += [_drift_over_time(results, plots),
                     (regression_performance(results, latest, plots, times) if regression
                      else _performance(results, latest, plots)),
                     _concept(latest.get("concept_drift"), regression),
                     gap_fairness(fairness) if fairness and "differences" in fairness else _fairness(fairness),
                     _utilisation(latest.get("utilisation"))]
        if compute is not None:
            sections.append(compute_section(compute, plots))
    return _page(title, _header(profile, results, latest, title), sections, drift)


def write_report(path: str | Path, profile: dict, results: list[dict], title: str,
                 compute: dict | None = None) -> Path:
    return _write(path, render_report(profile, results, title=title, compute=compute))


def render_drift_report(profile: dict, report: dict, *, title: str) -> str:
    """The page of one comparison of two data sets (`mlops drift --html`): the decision and its rule, the
    per-feature cards, summary statistics, prediction and multivariate drift; no monitoring sections."""
    profile, report = profile or {}, report or {}
    rows = [("reference rows", num(profile.get("rows"))), ("rows compared", num(report.get("rows"))),
            ("columns compared", num(len(report.get("features") or {}) + len(report.get("outputs") or {})))]
    head = (f"<h1>{e(title)}</h1>"
            + table(["", ""], [[Markup(f"<th>{e(k)}</th>"), v] for k, v in rows], head=False))
    sections = [dataset_summary(report), features_section(report, "features", "Data drift", profile),
                summary_statistics(report, profile)]
    if report.get("outputs"):
        sections.append(features_section(report, "outputs", "Prediction drift", profile))
    if report.get("multivariate"):
        with Plots() as plots:
            sections.append(multivariate_section([report["multivariate"]], [0], plots))
    return _page(title, head, sections, report)


def write_drift_report(out: Path, profile: dict, report: dict, title: str) -> Path:
    """`report`: DriftReport.to_dict() (its JSON form works too)."""
    return _write(out, render_drift_report(profile, report, title=title))


def _write(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _page(title: str, head: str, sections: list[str], drift: dict | None) -> str:
    sections = [s for s in sections if s]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(title)}</title>'
            f'<style>{CSS}</style></head>\n<body>\n{_contents(sections, drift)}\n{head}\n'
            + "\n".join(sections) + "\n</body></html>\n")


def _contents(sections: list[str], drift: dict | None) -> str:
    """The table of contents: a link to each section, and to each drifted feature's card."""
    links = [f'<a href="#{anchor}">{heading}</a>'
             for anchor, heading in re.findall(r'<section id="([^"]+)"><h2>(.*?)</h2>', "".join(sections))]
    drifted = [(side, n) for side in ("features", "outputs") for n, f in ((drift or {}).get(side) or {}).items()
               if f.get("drifted")]
    if drifted:
        links.append(f"<details><summary>Drifted ({len(drifted)})</summary>" + " ".join(
            f'<a href="#{feature_anchor(side, drift or {}, n)}">{e(short(n, 30))}</a>' for side, n in drifted)
            + "</details>")
    return f'<nav class="toc" aria-label="contents"><b>Contents</b> {" ".join(links)}</nav>'


# ---- sections ----------------------------------------------------------------------------------------------

def _header(profile: dict, results: list[dict], latest: dict, title: str) -> str:
    window = latest.get("window") or {}
    rows = [("model", window.get("model")), ("endpoint", window.get("endpoint")),
            ("deployment", window.get("deployment")),
            ("window", f"{window.get('start') or '?'} → {window.get('end') or '?'}"),
            ("rows", num(window.get("rows"))), ("labelled rows", num(window.get("labelled"))),
            ("windows in this report", str(len(results)))]
    if profile.get("rows") is not None:
        rows.append(("reference rows", num(profile["rows"])))
    parts = [f"<h1>{e(title)}</h1>", table(["", ""], [[Markup(f"<th>{e(k)}</th>"), "–" if v is None else v]
                                                      for k, v in rows], head=False)]
    if not profile.get("features"):
        parts.append(none_note("No reference profile is available for this model: the distributions below come from "
                               "the monitoring records alone."))
    if not results:
        parts.append(none_note("No monitoring results yet."))
    return "\n".join(parts)


def _alerts(results: list[dict], latest: dict) -> str:
    alerts = latest.get("alerts") or []
    if alerts:
        parts = [table(["type", "condition", "summary"],
                       [[Markup(f'<span class="bad">{e(a.get("type", ""))}</span>'), a.get("condition", ""),
                         a.get("summary", "")] for a in alerts])]
    else:
        parts = [Markup('<p class="ok">No alerts in the latest window.</p>')]
    every = Counter(a.get("type", "?") for r in results for a in (r.get("alerts") or []))
    if every and len(results) > 1:
        counts = ", ".join(f"{t}: {n}" for t, n in every.most_common())
        parts.append(f'<p class="note">{e(f"Over all {len(results)} windows: {counts}.")}</p>')
    return section("Alerts", "\n".join(parts))


def _drift_over_time(results: list[dict], plots: Plots) -> str:
    series: dict[str, dict[str, list[float]]] = {}
    limits: dict[str, float] = {}
    nearest: dict[str, float] = {}
    for i, result in enumerate(results):
        drift = result.get("drift") or {}
        for name, f in (drift.get("features") or {}).items():
            metric = decisive_metric(f, drift.get("thresholds") or {})
            values = series.setdefault(metric, {}).setdefault(name, [math.nan] * len(results))
            values[i] = as_float((f.get("metrics") or {}).get(metric))
            nearest[name] = max(nearest.get(name, 0.0), severity(f, drift.get("thresholds") or {}))
            if (f.get("thresholds") or {}).get(metric) is not None:
                limits[metric] = f["thresholds"][metric]
    if not series:
        return section("Drift over time", none_note("No drift results yet."))
    # a wide table's hundreds of lines would be one grey mass: those that came nearest their thresholds
    shown = set(sorted(nearest, key=lambda n: -nearest[n])[:MAX_SERIES])
    series = {m: {n: v for n, v in lines.items() if n in shown} for m, lines in series.items()}
    series = {m: lines for m, lines in series.items() if lines}
    x = _times(results)
    fig = plots.figure(8, 0.6 + 2.2 * len(series))
    for k, (metric, lines) in enumerate(series.items()):
        ax = fig.add_subplot(len(series), 1, k + 1)
        ax.set_prop_cycle(color=[plots.colour(i, len(lines)) for i in range(len(lines))])
        for name, values in lines.items():
            ax.plot(*_finite(x, values), marker="o", markersize=2.5, linewidth=1, label=series_label(name))
        if metric in limits:
            ax.axhline(limits[metric], color="black", linestyle="--", linewidth=0.8, label="threshold")
        ax.set_ylabel(DRIFT_METRICS.get(metric, metric))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=6, frameon=False,
                  ncols=1 if len(lines) < 12 else 2)
    plots.time_axis(fig, x)
    fig.subplots_adjust(left=0.08, right=0.7, bottom=0.45 / (0.6 + 2.2 * len(series)), top=0.97, hspace=0.3)
    note = "Each feature's deciding metric per window (x: window end), with its threshold"
    if len(nearest) > len(shown):
        note += f"; the {len(shown)} of {len(nearest)} features that came nearest their thresholds"
    return section("Drift over time", f'<p class="note">{e(note)}.</p>' + plots.svg(fig))


def _performance(results: list[dict], latest: dict, plots: Plots) -> str:
    perf, estimate = latest.get("performance"), latest.get("estimated_performance")
    parts: list[str] = []
    if perf is None and estimate is None:
        parts.append(none_note("No labels in this window, and no estimate of the performance."))
    else:
        if perf is None:
            parts.append(none_note("No labels in this window: only the estimate (CBPE) is shown."))
        measured = (perf or {}).get("metrics") or {}
        estimated = (estimate or {}).get("metrics") or {}
        baseline = (perf or {}).get("baseline") or {}
        parts.append(table(["metric", "measured", "estimated", "holdout baseline"],
                            [[m, num(measured.get(m)), num(estimated.get(m)), num(baseline.get(m))]
                             for m in PERFORMANCE if m in measured or m in estimated or m in baseline]))
        if perf is not None:
            classes = ", classes " + ", ".join(map(str, perf["classes"])) if perf.get("classes") else ""
            parts.append(f'<p class="note">{e(num(perf.get("rows")) + " labelled rows" + classes)}.</p>')
        if estimate is not None:
            text = (f"Estimate: {estimate.get('method', '?')}, {'' if estimate.get('calibrated') else 'not '}calibrated"
                    f" (calibration error {num(estimate.get('calibration_error'))}), "
                    f"{num(estimate.get('rows'))} rows" + (f"; {estimate['reason']}" if estimate.get("reason") else ""))
            parts.append(f'<p class="note">{e(text)}.</p>')
        parts.append(_estimate_warning(measured, estimated))
    if any(r.get("performance") or r.get("estimated_performance") for r in results):
        parts.append(_performance_plot(results, plots))
    return section("Performance", "\n".join(parts))


def _performance_plot(results: list[dict], plots: Plots) -> str:
    x = _times(results)
    fig = plots.figure(8, 2.8)
    ax = fig.add_subplot()

    def values(section: str, key: str, metric: str) -> list[float]:
        return [as_float((((r.get(section) or {}).get(key)) or {}).get(metric)) for r in results]
    for metric, colour in PLOTTED_PERFORMANCE.items():
        ax.plot(*_finite(x, values("performance", "metrics", metric)), color=colour, marker="o", markersize=3,
                label=f"{metric} (measured)")
        ax.plot(*_finite(x, values("estimated_performance", "metrics", metric)), color=colour, linestyle="--",
                marker="x", markersize=3, label=f"{metric} (estimated)")
        baseline_line(ax, x, _baseline(results, metric), colour, f"{metric} (holdout baseline)")
    ax.set_ylabel("score")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    plots.time_axis(fig, x)
    fig.subplots_adjust(left=0.08, right=0.72, bottom=0.2, top=0.95)
    return plots.svg(fig)


def _baseline(results: list[dict], metric: str) -> list[float]:
    """The holdout's value of a metric per window: recorded with the measured performance, or with the
    estimate (a window without labels)."""
    out = []
    for r in results:
        recorded = ((r.get("performance") or {}).get("baseline") or {}).get(metric)
        if recorded is None:
            recorded = ((r.get("estimated_performance") or {}).get("reference") or {}).get(metric)
        out.append(as_float(recorded))
    return out


def _estimate_warning(measured: dict, estimated: dict) -> str:
    """CBPE next to a measured collapse: it reads the model's own confidence, which stays high when the
    relation between features and label changes, so it says all is well while the labels say otherwise."""
    apart = [m for m in PERFORMANCE if as_float(estimated.get(m)) - as_float(measured.get(m)) > ESTIMATE_DISAGREES]
    if not apart:
        return ""
    m = apart[0]
    more = f" (and {len(apart) - 1} other metric{'s' if len(apart) > 2 else ''})" if len(apart) > 1 else ""
    return warning(f"CBPE estimates {m} {num(estimated[m])} but the labelled rows measure {num(measured[m])}{more}. "
                   "CBPE assumes no concept drift (the relation between the features and the label unchanged) and "
                   "cannot see it: trust the measured value.")


def _concept(c: dict | None, regression: bool = False) -> str:
    if not c:
        return section("Concept drift", none_note("No labels in this window: concept drift needs them."))
    parts: list[str] = [marked("Concept drift detected." if c.get("detected") else "No concept drift detected.",
                     c.get("detected"), ok=True, tag="p")]
    parts += [bullet_list(c.get("reasons"))]
    drop = c.get("performance_drop") or {}
    if drop:
        # a regression model's errors rise: "drop" is how much worse, which reads wrong for them
        parts.append(table(["metric", "current", "baseline", "worse by" if regression else "drop", "p-value",
                            "significant"],
                            [[m, num(d.get("current")), num(d.get("baseline")), num(d.get("drop")),
                              num(d.get("pvalue")), flag(d.get("significant"), "yes")] for m, d in drop.items()]))
    if regression:
        parts.append(residual_notes(c))
    relation = c.get("relation") or {}
    if relation:
        parts.append("<h3>" + ("Error by segment of each feature" if c.get("relation_method") == "error by segment"
                               else "Relation of each feature to the label") + "</h3>")
        parts.append(table(["feature", "shift", "p-value", "drifted"],
                            [[f, num(r.get("shift")), num(r.get("pvalue")), flag(r.get("drifted"), "yes")]
                             for f, r in sorted(relation.items(), key=lambda kv: not kv[1].get("drifted"))]))
    return section("Concept drift", "\n".join(parts))


def _fairness(f: dict | None) -> str:
    if not f:
        return section("Fairness", none_note("No fairness result for this window (no sensitive column, or no labels)."))
    groups = f.get("groups") or {}
    parts = [f'<p>Sensitive column: <b>{e(f.get("sensitive_column", "?"))}</b></p>',
             table(["group", "count", "selection rate", "accuracy", "false positive rate", "false negative rate"],
                    [[g, num(v.get("count")), num(v.get("selection_rate")), num(v.get("accuracy")),
                      num(v.get("false_positive_rate")), num(v.get("false_negative_rate"))]
                     for g, v in groups.items()])]
    if f.get("excluded_groups"):
        parts.append(f'<p class="note">{e("Too small to compare: " + ", ".join(map(str, f["excluded_groups"])))}</p>')
    thresholds, rows = f.get("thresholds") or {}, []
    for metric, lower_is_bad in (("demographic_parity_difference", False), ("demographic_parity_ratio", True),
                                 ("equalized_odds_difference", False)):
        value, limit = as_float(f.get(metric)), thresholds.get(metric)
        beyond = limit is not None and math.isfinite(value) and (value < limit if lower_is_bad else value > limit)
        rows.append([metric.replace("_", " "), num(value), num(limit), flag(beyond, "yes")])
    parts.append(table(["metric", "value", "threshold", "beyond"], rows))
    parts.append(marked("Fairness threshold breached." if f.get("breached") else "Within the fairness thresholds.",
                         f.get("breached"), ok=True, tag="p"))
    parts.append(bullet_list(f.get("reasons")))
    return section("Fairness", "\n".join(parts))


def _utilisation(u: dict | None) -> str:
    if not u:
        return section("Utilisation", none_note("No utilisation figures for this window."))
    latency = u.get("latency_ms") or {}
    rows = [("deployment", u.get("deployment")), ("request rate (/s)", num(u.get("request_rate"))),
            ("latency p50 (ms)", num(latency.get("p50"))), ("latency p95 (ms)", num(latency.get("p95"))),
            ("error rate", pct(u.get("error_rate"))), ("CPU", pct_points(u.get("cpu_percent"))),
            ("memory", pct_points(u.get("memory_percent"))), ("instances", num(u.get("instances"))),
            ("recommendation", Markup(f'<b>{e(u.get("recommendation") or "–")}</b>'))]
    body = table(["", ""], [[Markup(f"<th>{e(k)}</th>"), "–" if v is None else v] for k, v in rows], head=False)
    return section("Utilisation", body + bullet_list(u.get("reasons")))


# ---- small pieces ------------------------------------------------------------------------------------------

def _times(results: list[dict]) -> list:
    """Window ends as datetimes, or window numbers when any of them is not a timestamp."""
    try:
        return [datetime.fromisoformat(str((r.get("window") or {})["end"]).replace("Z", "+00:00")) for r in results]
    except (KeyError, TypeError, ValueError):
        return list(range(1, len(results) + 1))



