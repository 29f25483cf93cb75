"""The monitoring report: one self-contained HTML page over a model's monitoring results, oldest first.

`render_report(profile, results, title=...) -> str` and `write_report(path, profile, results, title) -> Path`.
A result is what one monitoring pass recorded (MonitorRun.result): window, drift (DriftReport.to_dict()),
performance, estimated_performance, concept_drift, fairness, utilisation and alerts. Any section may be None
or missing: the page then says why there is nothing to show instead of failing.

The sections are built here, those that depend on the model's task (a result's "task": a regression model's
performance, fairness as gaps between groups) in monitoring/report_regression.py; the plots are drawn once per
report by monitoring/report_plots.py (inline SVG, text kept as text) and the cells formatted by
monitoring/report_format.py. Every piece of text taken from the data
is HTML-escaped; matplotlib escapes what it writes into the SVG, and `$` is escaped so that a column name
is never read as mathtext.
"""
from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from pathlib import Path

from monitoring.report_format import (
    Markup,
    as_float,
    bullet_list,
    e,
    flag,
    marked,
    mpl_text,
    none_note,
    num,
    pct,
    pct_points,
    section,
    short,
    table,
)
from monitoring.report_plots import Plots, distribution_plot
from monitoring.report_plots import finite_points as _finite
from monitoring.report_regression import gap_fairness, regression_performance, residual_notes

DEFAULT_DECISIVE = {"numeric": "normalized_wasserstein", "categorical": "jensen_shannon"}
DRIFT_METRICS = {"normalized_wasserstein": "norm. Wasserstein", "psi": "PSI", "jensen_shannon": "Jensen-Shannon"}
QUALITY = {"null_rate": "nulls", "type_error_rate": "type errors", "out_of_range_rate": "out of range"}
PERFORMANCE = ("accuracy", "f1", "precision", "recall", "roc_auc")
PLOTTED_PERFORMANCE = {"accuracy": "#1f77b4", "f1": "#ff7f0e"}

CSS = """body{font:14px/1.45 system-ui,sans-serif;color:#222;max-width:1100px;margin:1.5em auto;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
h3{font-size:1em;margin:.2em 0}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}th{background:#f4f4f4}
td.n{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#b52b27;font-weight:600}.ok{color:#2e7d32}
.dec{font-weight:600}.none{color:#666;font-style:italic}.note{color:#555}
.card{display:inline-block;vertical-align:top;margin:.4em;padding:.4em;border:1px solid #ddd;border-radius:4px}
.card.drifted{border-color:#d9534f}.badge{background:#d9534f;color:#fff;border-radius:3px;padding:0 .4em;font-size:.8em}
svg{max-width:100%;height:auto}"""


def render_report(profile: dict, results: list[dict], *, title: str) -> str:
    """One HTML document over every result (oldest first); the latest result is shown in detail."""
    profile = profile or {}
    results = [r or {} for r in results]
    latest = results[-1] if results else {}
    regression = latest.get("task") == "regression"        # results written before tasks: classification
    fairness = latest.get("fairness")
    with Plots() as plots:
        sections = [_header(profile, results, latest, title),
                    _features(latest, "features", "Data drift", plots, profile),
                    _features(latest, "outputs", "Prediction drift", plots, {}),
                    _drift_over_time(results, plots),
                    (regression_performance(results, latest, plots, _times(results)) if regression
                     else _performance(results, latest, plots)),
                    _concept(latest.get("concept_drift"), regression),
                    gap_fairness(fairness) if fairness and "differences" in fairness else _fairness(fairness),
                    _utilisation(latest.get("utilisation"))]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f'<style>{CSS}</style></head>\n<body>\n' + "\n".join(sections) + "\n</body></html>\n")


def write_report(path: str | Path, profile: dict, results: list[dict], title: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(profile, results, title=title), encoding="utf-8")
    return path


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
    parts = [f"<h1>{e(title)}</h1>", table(["", ""], [[Markup(f"<th>{e(k)}</th>"), v] for k, v in rows], head=False)]
    if not profile.get("features"):
        parts.append(none_note("No reference profile is available for this model: the distributions below come from "
                           "the monitoring records alone."))
    if not results:
        parts.append(none_note("No monitoring results yet."))
    alerts = latest.get("alerts") or []
    parts.append("<h2>Alerts</h2>")
    if alerts:
        parts.append(table(["type", "condition", "summary"],
                            [[Markup(f'<span class="bad">{e(a.get("type", ""))}</span>'), a.get("condition", ""),
                              a.get("summary", "")] for a in alerts]))
    else:
        parts.append(Markup('<p class="ok">No alerts in the latest window.</p>'))
    every = Counter(a.get("type", "?") for r in results for a in (r.get("alerts") or []))
    if every and len(results) > 1:
        counts = ", ".join(f"{t}: {n}" for t, n in every.most_common())
        parts.append(f'<p class="note">{e(f"Over all {len(results)} windows: {counts}.")}</p>')
    return "\n".join(parts)


def _features(latest: dict, side: str, heading: str, plots: Plots, profile: dict) -> str:
    drift = latest.get("drift")
    if not drift:
        return section(heading, none_note("No drift result for this window (no data in it?)."))
    features = drift.get(side) or {}
    if not features:
        why = ("no model output is profiled for prediction drift" if side == "outputs"
               else "no profiled feature was present in this window")
        return section(heading, none_note(f"Nothing to compare: {why}."))
    decisive = drift.get("thresholds") or {}
    order = sorted(features, key=lambda n: (not features[n].get("drifted"),
                                            -_severity(features[n], decisive) if features[n].get("drifted") else 0))
    drifted = [n for n in order if features[n].get("drifted")]
    noun = "model outputs" if side == "outputs" else "features"
    summary = (f"Drift in {len(drifted)} of {len(features)} {noun}: {', '.join(drifted)}." if drifted
               else f"No drift in the {len(features)} {noun} compared.")
    parts = [f'<p class="{"bad" if drifted else "ok"}">{e(summary)}</p>', _drift_table(features, order, decisive)]
    missing = [n for n in (profile.get("features") or {}) if n not in features]
    if missing:
        parts.append(f'<p class="note">{e("Not in this window: " + ", ".join(missing))}</p>')
    parts.append('<p class="note">Reference (grey) and current (red) share of rows per bin; numeric bins are '
                 'labelled by their lower edge.</p>')
    for name in order:
        f = features[name]
        metric = _decisive(f, decisive)
        value, limit = (f.get("metrics") or {}).get(metric), (f.get("thresholds") or {}).get(metric)
        badge = ' <span class="badge">drifted</span>' if f.get("drifted") else ""
        parts.append(f'<div class="card{" drifted" if f.get("drifted") else ""}"><h3>{e(name)}{badge}</h3>'
                     f'<div class="note">{e(f.get("kind", ""))}, {e(DRIFT_METRICS.get(metric, metric))} '
                     f'{e(num(value))} (threshold {e(num(limit))})</div>{distribution_plot(plots, f)}</div>')
    return section(heading, "\n".join(parts))


def _drift_table(features: dict, order: list[str], decisive: dict) -> str:
    rows = []
    for name in order:
        f = features[name]
        metrics, flags, quality = f.get("metrics") or {}, f.get("flags") or {}, f.get("quality") or {}
        chosen = set(decisive.get(f"decisive_{f.get('kind')}") or [DEFAULT_DECISIVE.get(f.get("kind"), "")])
        row = [name, f.get("kind", ""), flag(f.get("drifted"), "drifted")]
        for metric in DRIFT_METRICS:
            css = " ".join(c for c, on in (("bad", flags.get(metric)), ("dec", metric in chosen)) if on)
            row.append(marked(num(metrics.get(metric)), False, css=css))
        test = "ks_pvalue" if "ks_pvalue" in metrics else "chi2_pvalue"
        row.append(marked(f"{num(metrics.get(test))} ({'KS' if test == 'ks_pvalue' else 'χ²'})", flags.get(test)))
        qflags = f.get("quality_flags") or {}
        for rate in QUALITY:
            text = pct(quality.get(rate))
            if f"reference_{rate}" in quality:
                text += f" (ref {pct(quality[f'reference_{rate}'])})"
            row.append(marked(text, qflags.get(rate)))
        rows.append(row)
    head = ["feature", "kind", "drifted", *DRIFT_METRICS.values(), "p-value (test)", *QUALITY.values()]
    return (table(head, rows) + '<p class="note">Bold: the metrics that decide drift; red: beyond its threshold '
            '(p-values: below it). Quality rates are flagged when they exceed the reference\'s by their threshold.</p>')


def _drift_over_time(results: list[dict], plots: Plots) -> str:
    series: dict[str, dict[str, list[float]]] = {}
    limits: dict[str, float] = {}
    for i, result in enumerate(results):
        drift = result.get("drift") or {}
        for name, f in (drift.get("features") or {}).items():
            metric = _decisive(f, drift.get("thresholds") or {})
            values = series.setdefault(metric, {}).setdefault(name, [math.nan] * len(results))
            values[i] = as_float((f.get("metrics") or {}).get(metric))
            if (f.get("thresholds") or {}).get(metric) is not None:
                limits[metric] = f["thresholds"][metric]
    if not series:
        return section("Drift over time", none_note("No drift results yet."))
    x = _times(results)
    fig = plots.figure(8, 0.6 + 2.2 * len(series))
    for k, (metric, lines) in enumerate(series.items()):
        ax = fig.add_subplot(len(series), 1, k + 1)
        ax.set_prop_cycle(color=[plots.colour(i, len(lines)) for i in range(len(lines))])
        for name, values in lines.items():
            ax.plot(*_finite(x, values), marker="o", markersize=2.5, linewidth=1, label=mpl_text(short(name, 20)))
        if metric in limits:
            ax.axhline(limits[metric], color="black", linestyle="--", linewidth=0.8, label="threshold")
        ax.set_ylabel(DRIFT_METRICS.get(metric, metric))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=6, frameon=False,
                  ncols=1 if len(lines) < 12 else 2)
    plots.time_axis(fig, x)
    fig.subplots_adjust(left=0.08, right=0.7, bottom=0.45 / (0.6 + 2.2 * len(series)), top=0.97, hspace=0.3)
    note = '<p class="note">Each feature\'s deciding metric per window (x: window end), with its threshold.</p>'
    return section("Drift over time", note + plots.svg(fig))


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
        baseline = values("performance", "baseline", metric)     # the model's: carried over unlabelled windows
        for i in range(1, len(baseline)):
            baseline[i] = baseline[i - 1] if math.isnan(baseline[i]) else baseline[i]
        ax.plot(*_finite(x, baseline), color=colour, linestyle=":", drawstyle="steps-post", linewidth=1.2,
                label=f"{metric} (holdout baseline)")
    ax.set_ylabel("score")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    plots.time_axis(fig, x)
    fig.subplots_adjust(left=0.08, right=0.72, bottom=0.2, top=0.95)
    return plots.svg(fig)


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

def _decisive(feature: dict, thresholds: dict) -> str:
    kind = feature.get("kind", "numeric")
    chosen = thresholds.get(f"decisive_{kind}") or [DEFAULT_DECISIVE.get(kind, "psi")]
    return chosen[0]


def _severity(feature: dict, thresholds: dict) -> float:
    metric = _decisive(feature, thresholds)
    value, limit = (as_float((feature.get("metrics") or {}).get(metric)),
                    as_float((feature.get("thresholds") or {}).get(metric)))
    ratio = value / limit if limit and math.isfinite(value) else 0.0
    return ratio if math.isfinite(ratio) else 0.0


def _times(results: list[dict]) -> list:
    """Window ends as datetimes, or window numbers when any of them is not a timestamp."""
    try:
        return [datetime.fromisoformat(str((r.get("window") or {})["end"]).replace("Z", "+00:00")) for r in results]
    except (KeyError, TypeError, ValueError):
        return list(range(1, len(results) + 1))



