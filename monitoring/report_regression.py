"""The monitoring report's sections that depend on the model's task: a regression model's performance (errors,
predicted against actual, residuals; no confusion matrix or calibration, which a regressor has none of) and
fairness as performance gaps between groups (a regression model's MAE, a multiclass model's accuracy and
macro F1; monitoring.fairness_gaps). monitoring/report.py picks them by the result's "task"."""
from __future__ import annotations

import math

from monitoring.report_format import as_float, bullet_list, e, flag, marked, none_note, num, section, table, warning
from monitoring.report_plots import (
    CURRENT_COLOUR,
    REFERENCE_COLOUR,
    Plots,
    baseline_line,
    distribution_plot,
    finite_points,
)

ERRORS = ("mae", "rmse", "r2", "mape")
NAMES = {"mae": "MAE", "rmse": "RMSE", "r2": "R²", "mape": "MAPE"}
PLOTTED_ERRORS = {"mae": "#1f77b4", "rmse": "#ff7f0e"}
ESTIMATE_DISAGREES = 1.25       # measured errors this many times the estimate's: it cannot see what happened


def regression_performance(results: list[dict], latest: dict, plots: Plots, times: list) -> str:
    perf, estimate = latest.get("performance"), latest.get("estimated_performance")
    parts: list[str] = []
    if perf is None and not (estimate or {}).get("metrics"):
        reason = (estimate or {}).get("reason")
        why = f" ({reason})" if reason else ""
        parts.append(none_note(f"No labels in this window, and no estimate of the error{why}."))
    else:
        if perf is None:
            parts.append(none_note("No labels in this window: only the estimate (direct loss estimation) is shown."))
        measured = (perf or {}).get("metrics") or {}
        estimated = (estimate or {}).get("metrics") or {}
        baseline = (perf or {}).get("baseline") or {}
        parts.append(table(["metric", "measured", "estimated", "holdout baseline"],
                           [[NAMES[m], num(measured.get(m)), num(estimated.get(m)), num(baseline.get(m))]
                            for m in ERRORS if m in measured or m in estimated or m in baseline]))
        if perf is not None:
            parts.append(f'<p class="note">{e(num(perf.get("rows")) + " labelled rows")}; a residual is the true '
                         'value minus the prediction (negative: predicted too high).</p>')
    if estimate is not None:
        reference = estimate.get("reference") or {}
        text = (f"Estimate: {estimate.get('method', '?')} over {num(estimate.get('rows'))} rows, learnt from "
                f"{num(reference.get('rows'))} holdout rows (their MAE {num(reference.get('mae'))})"
                + (f"; {estimate['reason']}" if estimate.get("reason") else ""))
        parts.append(f'<p class="note">{e(text)}.</p>')
        parts.append(_estimate_warning((perf or {}).get("metrics") or {}, estimate.get("metrics") or {}))
    if perf is not None:
        parts.append(_predicted_vs_actual(perf.get("predicted_vs_actual") or {}, plots))
        parts.append(_residuals(perf.get("residuals") or {}, plots))
    if any(r.get("performance") or (r.get("estimated_performance") or {}).get("metrics") for r in results):
        parts.append(_errors_over_time(results, plots, times))
    return section("Performance", "\n".join(p for p in parts if p))


def _estimate_warning(measured: dict, estimated: dict) -> str:
    """DLE beside measured errors well above it: it learnt the errors' relation to the features on the
    holdout, so a changed relation (concept drift) is what it cannot see."""
    worse = [m for m in ("mae", "rmse") if as_float(measured.get(m)) > ESTIMATE_DISAGREES * as_float(estimated.get(m))]
    if not worse:
        return ""
    m = worse[0]
    return warning(f"Direct loss estimation estimates {NAMES[m]} {num(estimated[m])} but the labelled rows measure "
                   f"{num(measured[m])}. The estimate assumes no concept drift (the relation between the features and "
                   "the target unchanged) and cannot see it: trust the measured value.")


def _predicted_vs_actual(points: dict, plots: Plots) -> str:
    predicted, actual = points.get("predicted") or [], points.get("actual") or []
    if not predicted:
        return ""
    fig = plots.figure(4.2, 3.4)
    ax = fig.add_subplot()
    low = [as_float(v) for v in points.get("actual_p10") or []]
    high = [as_float(v) for v in points.get("actual_p90") or []]
    if len(low) == len(predicted) == len(high):
        ax.fill_between(predicted, low, high, color=REFERENCE_COLOUR, alpha=0.35, linewidth=0,
                        label="true values, 10th–90th percentile")
    ax.plot(predicted, actual, color=CURRENT_COLOUR, marker="o", markersize=3, label="mean true value")
    ends = [min(min(predicted), min(actual)), max(max(predicted), max(actual))]
    ax.plot(ends, ends, color="black", linestyle="--", linewidth=0.8, label="perfect")
    ax.set_xlabel("predicted (mean of each tenth of the predictions)")
    ax.set_ylabel("true value")
    ax.legend(loc="upper left", fontsize=6, frameon=False)
    fig.subplots_adjust(left=0.16, right=0.97, bottom=0.15, top=0.96)
    return "<h3>Predicted against actual</h3>" + plots.svg(fig)


def _residuals(histogram: dict, plots: Plots) -> str:
    edges, counts = histogram.get("edges") or [], histogram.get("counts") or []
    if not counts:
        return ""
    reference = histogram.get("reference_counts")
    labels = [f"{as_float(x):.3g}" for x in edges[:len(counts)]]
    # as a feature's distribution: the holdout's residuals (grey, where saved) against the window's (red)
    plot = distribution_plot(plots, {"kind": "numeric", "bins": labels, "edges": edges,
                                     "reference_counts": reference or [0] * len(counts), "current_counts": counts})
    text = (f"Residuals of this window: mean {num(histogram.get('mean'))}, standard deviation "
            f"{num(histogram.get('std'))}" + (f"; the holdout's mean {num(histogram.get('reference_mean'))}"
                                              if reference else "; the holdout's were not saved with the model")
            + ". The outer bins hold everything beyond three standard deviations.")
    return f'<h3>Residuals</h3><p class="note">{e(text)}</p>{plot}'


def _errors_over_time(results: list[dict], plots: Plots, times: list) -> str:
    fig = plots.figure(8, 2.8)
    ax = fig.add_subplot()

    def values(part: str, key: str, metric: str) -> list[float]:
        return [as_float((((r.get(part) or {}).get(key)) or {}).get(metric)) for r in results]
    for metric, colour in PLOTTED_ERRORS.items():
        ax.plot(*finite_points(times, values("performance", "metrics", metric)), color=colour, marker="o", markersize=3,
                label=f"{NAMES[metric]} (measured)")
        ax.plot(*finite_points(times, values("estimated_performance", "metrics", metric)), color=colour, linestyle="--",
                marker="x", markersize=3, label=f"{NAMES[metric]} (estimated)")
        baseline = [b if math.isfinite(b) else as_float(((r.get("estimated_performance") or {}).get("reference")
                                                          or {}).get(metric))
                    for b, r in zip(values("performance", "baseline", metric), results)]
        baseline_line(ax, times, baseline, colour, f"{NAMES[metric]} (holdout baseline)")
    ax.set_ylabel("error")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    plots.time_axis(fig, times)
    fig.subplots_adjust(left=0.08, right=0.72, bottom=0.2, top=0.95)
    return "<h3>Errors over time</h3>" + plots.svg(fig)


def residual_notes(concept: dict) -> str:
    """The residual check of a regression model's concept drift, in a sentence."""
    residuals = concept.get("residuals") or {}
    if not residuals:
        return ""
    if residuals.get("method") == "bias":
        text = (f"Mean residual {num(residuals.get('mean'))} over {num(residuals.get('rows'))} rows, tested against "
                f"0 (no holdout rows saved): p-value {num(residuals.get('pvalue'))}.")
    else:
        text = (f"Residuals against the holdout's ({num(residuals.get('reference_rows'))} rows): normalized "
                f"Wasserstein {num(residuals.get('normalized_wasserstein'))} (threshold "
                f"{num(residuals.get('threshold'))}), KS p-value {num(residuals.get('pvalue'))}; mean "
                f"{num(residuals.get('mean'))} against {num(residuals.get('reference_mean'))}.")
    return marked(text, residuals.get("drifted"), tag="p")


def gap_fairness(f: dict) -> str:
    """A regression or multiclass model's fairness: per-group performance and the gaps between groups."""
    groups, regression = f.get("groups") or {}, f.get("task") == "regression"
    columns = (("count", "MAE", "RMSE", "mean residual", "mean prediction", "mean true value") if regression
               else ("count", "accuracy", "macro F1"))
    keys = (("count", "mae", "rmse", "mean_residual", "mean_prediction", "mean_true") if regression
            else ("count", "accuracy", "macro_f1"))
    parts = [f'<p>Sensitive column: <b>{e(f.get("sensitive_column", "?"))}</b></p>',
             table(["group", *columns], [[g, *(num(v.get(k)) for k in keys)] for g, v in groups.items()])]
    if f.get("excluded_groups"):
        parts.append(f'<p class="note">{e("Too small to compare: " + ", ".join(map(str, f["excluded_groups"])))}</p>')
    thresholds, differences = f.get("thresholds") or {}, f.get("differences") or {}
    limits = ({"relative_mae_gap": thresholds.get("relative_mae_gap"), "mae_gap_pvalue": thresholds.get("alpha")}
              if regression else {"accuracy_difference": thresholds.get("accuracy_difference"),
                                  "macro_f1_difference": thresholds.get("macro_f1_difference")})
    rows = []
    for metric, value in differences.items():
        limit = limits.get(metric)
        number = as_float(value)
        beyond = limit is not None and math.isfinite(number) and (number < limit if metric.endswith("pvalue")
                                                                  else number > limit)
        rows.append([metric.replace("_", " "), num(value), num(limit), flag(beyond, "yes")])
    if rows:
        parts.append(table(["gap", "value", "threshold", "beyond"], rows))
    parts.append(marked("Fairness threshold breached." if f.get("breached") else "Within the fairness thresholds.",
                        f.get("breached"), ok=True, tag="p"))
    parts.append(bullet_list(f.get("reasons")))
    return section("Fairness", "\n".join(parts))
