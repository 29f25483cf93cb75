"""The drift sections of the reports, shared by the monitoring report and `mlops drift --html`'s page: the
dataset-level summary (share of features drifted, the rule that decided, the multivariate result), the
per-feature table and cards, per-column summary statistics, multivariate drift, label drift and feature
attribution drift.

They read the dicts the engine records (DriftReport.to_dict(), a MonitorResult's "label_drift" and
"attribution_drift") and tolerate every key being absent: records written before a key existed still render,
saying what was not recorded.
"""
from __future__ import annotations

import math

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
    section,
    short,
    table,
)
from monitoring.report_plots import CURRENT_COLOUR, REFERENCE_COLOUR, Plots, category_bars, distribution_plot

DEFAULT_DECISIVE = {"numeric": "normalized_wasserstein", "categorical": "jensen_shannon"}
DRIFT_METRICS = {"normalized_wasserstein": "norm. Wasserstein", "psi": "PSI", "jensen_shannon": "Jensen-Shannon"}
QUALITY = {"null_rate": "nulls", "type_error_rate": "type errors", "out_of_range_rate": "out of range"}
STATISTICS = ("mean", "std", "missing", "distinct")
SIDES = {"features": "feature", "outputs": "output"}
MAX_RANKS = 15


def feature_anchor(side: str, drift: dict, name: str) -> str:
    """The id of a feature's card: by its place in the record (names may hold any character)."""
    return f"{SIDES.get(side, side)}-{list(drift.get(side) or {}).index(name)}"


def decision_of(drift: dict) -> dict:
    """The dataset-level decision as recorded, or as a record from before it had one was decided."""
    recorded = drift.get("decision")
    if recorded:
        return recorded
    features = drift.get("features") or {}
    drifted = [n for n, f in features.items() if f.get("drifted")]
    return {"drifted": bool(drift.get("drifted", drifted)), "share_drifted": len(drifted) / len(features) if features
            else 0.0, "features_tested": len(features), "drifted_features": drifted, "multivariate_drifted": False,
            "rule": "Drift when any feature drifted by its deciding metrics (recorded before the dataset-level "
                    "rule: no correction for testing many features)."}


# ---- the dataset-level summary ---------------------------------------------------------------------------

def dataset_summary(drift: dict | None, *, label_drift: dict | None = None,
                    attribution_drift: dict | None = None) -> str:
    if not drift:
        return section("Summary", none_note("No drift result for this window (no data in it?)."))
    decision = decision_of(drift)
    tested = decision.get("features_tested") or len(drift.get("features") or {})
    drifted = list(decision.get("drifted_features") or [])
    share = as_float(decision.get("share_drifted"))
    verdict = "Drift detected." if decision.get("drifted") else "No drift."
    rows = [("decision", marked(verdict, decision.get("drifted"), ok=True)),
            ("rule", decision.get("rule") or "–"),
            ("features drifted", f"{len(drifted)} of {num(tested)} ({pct(share)})"),
            ("rows compared", num(drift.get("rows")))]
    links = Markup(", ".join(f'<a href="#{feature_anchor("features", drift, n)}">{e(n)}</a>' for n in drifted
                             if n in (drift.get("features") or {})))
    if drifted:
        rows.append(("drifted features", links))
    outputs = drift.get("drifted_outputs") or []
    if outputs:
        rows.append(("prediction drift", ", ".join(outputs)))
    multivariate = drift.get("multivariate")
    if multivariate:
        rows.append(("multivariate", marked(multivariate_sentence(multivariate), multivariate.get("drifted"),
                                            ok=True)))
    elif "multivariate" in drift:
        rows.append(("multivariate", "not computed (no reference row sample, or too few rows or columns)"))
    for name, kind in (("label drift", label_drift), ("feature attribution drift", attribution_drift)):
        if kind:
            rows.append((name, marked(_kind_sentence(kind), kind.get("drifted"), ok=True)))
    quality = drift.get("quality_issues") or []
    if quality:
        rows.append(("data quality issues", ", ".join(quality)))
    body = table(["", ""], [[Markup(f"<th>{e(k)}</th>"), v] for k, v in rows], head=False)
    return section("Summary", body)


def multivariate_sentence(m: dict) -> str:
    parts = []
    pca, domain = m.get("pca") or {}, m.get("domain_classifier") or {}
    if pca:
        band = pca.get("band") or [None, None]
        parts.append(f"PCA reconstruction error {num(pca.get('error'))} (reference band {num(band[0])}–"
                     f"{num(band[-1])}){': outside' if pca.get('drifted') else ''}")
    if domain:
        parts.append(f"domain classifier AUC {num(domain.get('auc'))}, p-value {num(domain.get('pvalue'))}"
                     f"{': drifted' if domain.get('drifted') else ''}")
    text = "; ".join(parts) or "no multivariate test ran"
    return f"{'Drift' if m.get('drifted') else 'No drift'}: {text}"


# ---- per-feature drift -----------------------------------------------------------------------------------

def features_section(drift: dict | None, side: str, heading: str, profile: dict) -> str:
    if not drift:
        return section(heading, none_note("No drift result for this window (no data in it?)."))
    features = drift.get(side) or {}
    if not features:
        why = ("no model output is profiled for prediction drift" if side == "outputs"
               else "no profiled feature was present in this window")
        return section(heading, none_note(f"Nothing to compare: {why}."))
    decisive = drift.get("thresholds") or {}
    order = sorted(features, key=lambda n: (not features[n].get("drifted"),
                                            -severity(features[n], decisive) if features[n].get("drifted") else 0))
    drifted = [n for n in order if features[n].get("drifted")]
    noun = "model outputs" if side == "outputs" else "features"
    summary = (f"Drift in {len(drifted)} of {len(features)} {noun}: {', '.join(drifted)}." if drifted
               else f"No drift in the {len(features)} {noun} compared.")
    parts = [f'<p class="{"bad" if drifted else "ok"}">{e(summary)}</p>', _drift_table(features, order, decisive)]
    missing = [n for n in ((profile or {}).get(side) or {}) if n not in features]
    if missing:
        parts.append(f'<p class="note">{e("Not in this window: " + ", ".join(missing))}</p>')
    parts.append('<p class="note"><span class="key ref"></span> reference <span class="key cur"></span> current. '
                 'Numeric features: the reference\'s quantile bins at their true widths, height the share of rows '
                 'per unit (so the reference\'s shape shows); wide open-ended outer bins are drawn clipped (dashed '
                 'outline). Categories: share of rows, the largest shown, the rest summed. Hover for the numbers.'
                 '</p>')
    specs = (profile or {}).get(side) or {}
    cards = []
    for name in order:
        f = features[name]
        metric = decisive_metric(f, decisive)
        value, limit = (f.get("metrics") or {}).get(metric), (f.get("thresholds") or {}).get(metric)
        badge = ' <span class="badge">drifted</span>' if f.get("drifted") else ""
        edges = ((specs.get(name) or {}).get("histogram") or {}).get("edges")
        css = "card drifted" if f.get("drifted") else "card"
        cards.append(f'<div class="{css}" id="{feature_anchor(side, drift, name)}">'
                     f'<h3 title="{e(name)}">{e(name)}{badge}</h3>'
                     f'<div class="note">{e(f.get("kind", ""))}, {e(DRIFT_METRICS.get(metric, metric))} '
                     f'{e(num(value))} (threshold {e(num(limit))})</div>{distribution_plot(None, f, edges)}</div>')
    parts.append(f'<div class="cards">{"".join(cards)}</div>')
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
        text = f"{num(metrics.get(test))} ({'KS' if test == 'ks_pvalue' else 'χ²'})"
        if f.get("pvalue_adjusted") is not None:
            text += f", adjusted {num(f['pvalue_adjusted'])}"
        row.append(marked(text, flags.get(test)))
        qflags = f.get("quality_flags") or {}
        for rate in QUALITY:
            text = pct(quality.get(rate))
            if f"reference_{rate}" in quality:
                text += f" (ref {pct(quality[f'reference_{rate}'])})"
            row.append(marked(text, qflags.get(rate)))
        rows.append(row)
    head = ["feature", "kind", "drifted", *DRIFT_METRICS.values(), "p-value (test)", *QUALITY.values()]
    return (table(head, rows) + '<p class="note">Bold: the metrics that decide drift; red: beyond its threshold '
            '(p-values: below it; adjusted: for the number of features tested). Quality rates are flagged when they '
            'exceed the reference\'s by their threshold.</p>')


def summary_statistics(drift: dict | None, profile: dict) -> str:
    """Mean, std, missing and distinct values of each column, reference against current."""
    features = {**((drift or {}).get("features") or {}), **((drift or {}).get("outputs") or {})}
    if not features:
        return section("Summary statistics", none_note("No columns compared."))
    specs = {**((profile or {}).get("features") or {}), **((profile or {}).get("outputs") or {})}
    rows = []
    for name, f in features.items():
        summary = f.get("summary") or {}
        reference = summary.get("reference") or _profile_summary(specs.get(name) or {})
        current = summary.get("current") or {}
        row = [Markup(f'<span title="{e(name)}">{e(short(name, 40))}</span>'), f.get("kind", "")]
        for stat in STATISTICS:
            ref, cur = reference.get(stat), current.get(stat)
            changed = _changed(stat, ref, cur, reference.get("std"))
            row += [_stat(stat, ref), marked(_stat(stat, cur), True) if changed else _stat(stat, cur)]
        rows.append(row)
    head = ["column", "kind", *(f"{s} {side}" for s in STATISTICS for side in ("ref", "cur"))]
    note = ('<p class="note">Missing: the share of null values; distinct: distinct values (– where not '
            'recorded: a window\'s numeric values are counted in bins, not kept). Red: a mean moved by more than '
            'a tenth of the reference std, or a missing share up by 5 points.</p>')
    if not any(f.get("summary") for f in features.values()):
        note += none_note("The current window's statistics were not recorded with this comparison.")
    return section("Summary statistics", table(head, rows) + note)


def _profile_summary(spec: dict) -> dict:
    return {"mean": spec.get("mean"), "std": spec.get("std"), "missing": spec.get("null_rate"),
            "distinct": spec.get("cardinality")}


def _stat(stat: str, value) -> str:
    number = as_float(value)
    if stat == "missing" and isinstance(value, float) and 0 <= number <= 1:      # a share (a count is an int)
        return pct(number)
    return num(value)


def _changed(stat: str, ref, cur, std) -> bool:
    a, b, scale = as_float(ref), as_float(cur), as_float(std)
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    if stat == "mean":
        return math.isfinite(scale) and scale > 0 and abs(b - a) > 0.1 * scale
    if stat == "missing" and isinstance(ref, float) and isinstance(cur, float) and a <= 1 and b <= 1:
        return b - a > 0.05
    return False


def decisive_metric(feature: dict, thresholds: dict) -> str:
    kind = feature.get("kind", "numeric")
    chosen = thresholds.get(f"decisive_{kind}") or [DEFAULT_DECISIVE.get(kind, "psi")]
    return chosen[0]


def severity(feature: dict, thresholds: dict) -> float:
    metric = decisive_metric(feature, thresholds)
    value, limit = (as_float((feature.get("metrics") or {}).get(metric)),
                    as_float((feature.get("thresholds") or {}).get(metric)))
    ratio = value / limit if limit and math.isfinite(value) else 0.0
    return ratio if math.isfinite(ratio) else 0.0


# ---- multivariate drift ----------------------------------------------------------------------------------

def multivariate_section(records: list[dict | None], x: list, plots: Plots) -> str:
    """records: each window's drift["multivariate"] (oldest first), x: the windows' positions on the plot."""
    latest = records[-1] if records else None
    if not latest:
        return section("Multivariate drift", none_note(
            "Not computed for this window: the reference profile has no row sample, or too few rows or columns."))
    parts: list[str] = [marked(multivariate_sentence(latest) + ".", latest.get("drifted"), ok=True, tag="p")]
    if latest.get("reason"):
        parts.append(f'<p class="note">{e(latest["reason"])}</p>')
    pca, domain = latest.get("pca") or {}, latest.get("domain_classifier") or {}
    if pca:
        parts.append("<h3>PCA reconstruction error</h3><p class=\"note\">The rows are projected on the reference's "
                     "principal components and back; a change in how the features go together (which no single "
                     "feature's test sees) raises the error out of the band the reference's own chunks stay in.</p>")
        parts.append(_pca_plot(records, x, plots))
    if domain:
        top, importance = domain.get("top_features") or [], domain.get("importance") or {}
        top = [{"feature": t, "importance": importance[t]} if isinstance(t, str) and t in importance else t
               for t in top]
        parts.append("<h3>Domain classifier</h3><p class=\"note\">A classifier trained to tell reference rows from "
                     "current ones: an AUC near 0.5 means it cannot, so the two are alike.</p>")
        parts.append(table(["AUC", "p-value", "drifted", "features it relied on most"],
                           [[num(domain.get("auc")), num(domain.get("pvalue")), flag(domain.get("drifted"), "yes"),
                             ", ".join(_named(t) for t in top[:10]) or "–"]]))
    if latest.get("rows") is not None:
        parts.append(f'<p class="note">{e(num(latest.get("rows")))} rows of the window sampled.</p>')
    return section("Multivariate drift", "\n".join(parts))


def _named(item) -> str:
    if isinstance(item, dict):
        name = item.get("feature") or item.get("name") or "?"
        value = item.get("importance", item.get("value"))
        return f"{name} ({num(value)})" if value is not None else str(name)
    if isinstance(item, list | tuple) and item:
        return f"{item[0]} ({num(item[1])})" if len(item) > 1 else str(item[0])
    return str(item)


def _pca_plot(records: list[dict | None], x: list, plots: Plots) -> str:
    points = [(a, (r or {}).get("pca") or {}) for a, r in zip(x, records)]
    points = [(a, p) for a, p in points if math.isfinite(as_float(p.get("error")))]
    if not points:
        return none_note("No reconstruction error recorded.")
    errors = [as_float(p["error"]) for _, p in points]
    bands = [[as_float(v) for v in (p.get("band") or [math.nan, math.nan])] for _, p in points]
    fig = plots.figure(7, 2.0)
    ax = fig.add_subplot()
    if len(points) == 1:                    # one comparison: the error as a point against its band
        low, high = bands[0][0], bands[0][-1]
        if math.isfinite(low) and math.isfinite(high):
            ax.axvspan(low, high, color=REFERENCE_COLOUR, alpha=0.4, linewidth=0, label="reference band")
        ax.plot([errors[0]], [0], "o", color=CURRENT_COLOUR, markersize=8, label="this window")
        ax.set_yticks([])
        ax.set_xlabel("reconstruction error")
        ax.spines["left"].set_visible(False)
        values = [errors[0], *(b for b in bands[0] if math.isfinite(b))]
        span = (max(values) - min(values)) or abs(values[0]) or 1.0
        ax.set_xlim(min(values) - 0.3 * span, max(values) + 0.3 * span)
    else:
        xs = [a for a, _ in points]
        ax.fill_between(xs, [b[0] for b in bands], [b[-1] for b in bands], step="mid", color=REFERENCE_COLOUR,
                        alpha=0.4, linewidth=0, label="reference band")
        ax.plot(xs, errors, color=CURRENT_COLOUR, marker="o", markersize=3, label="window")
        ax.set_ylabel("reconstruction error")
        plots.time_axis(fig, xs)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.subplots_adjust(left=0.08, right=0.8, bottom=0.3, top=0.92)
    return plots.svg(fig)


# ---- label drift and feature attribution drift -----------------------------------------------------------

def label_drift_section(ld: dict | None) -> str:
    if not ld:
        return section("Label drift", none_note("No label drift result: no labelled rows in this window."))
    parts: list[str] = [marked(_kind_sentence(ld) + ".", ld.get("drifted"), ok=True, tag="p"),
                        bullet_list(ld.get("reasons")), _scalars(ld)]
    reference, current = _pair(ld, ("reference", "holdout", "training"), ("current", "production", "window"))
    if isinstance(reference, dict) and isinstance(current, dict):
        names = list(dict.fromkeys([*reference, *current]))
        parts.append(category_bars([str(n) for n in names], _shares([reference.get(n) for n in names]),
                                   _shares([current.get(n) for n in names])))
    elif ld.get("reference_counts") is not None and ld.get("current_counts") is not None:
        parts.append(distribution_plot(None, {"kind": ld.get("kind", "categorical"), "bins": ld.get("bins") or [],
                                              "edges": ld.get("edges") or [],
                                              "reference_counts": ld["reference_counts"],
                                              "current_counts": ld["current_counts"]}))
    return section("Label drift", "\n".join(p for p in parts if p))


def attribution_drift_section(ad: dict | None) -> str:
    if not ad:
        return section("Feature attribution drift", none_note(
            "No feature attribution drift result: it needs labelled production rows and the model."))
    parts: list[str] = [marked(_kind_sentence(ad) + ".", ad.get("drifted"), ok=True, tag="p"),
                        bullet_list(ad.get("reasons")), _scalars(ad)]
    reference, current = _pair(ad, ("reference", "holdout", "training"), ("current", "production", "window"))
    if isinstance(reference, dict) and isinstance(current, dict) and reference:
        ref_rank, cur_rank = _ranks(reference), _ranks(current)
        names = sorted(set(reference) | set(current), key=lambda n: (ref_rank.get(n, math.inf), cur_rank.get(n, 0)))
        rows = [[n, num(ref_rank.get(n)), num(cur_rank.get(n)), num(reference.get(n)), num(current.get(n))]
                for n in names[:MAX_RANKS]]
        parts.append(table(["feature", "rank (reference)", "rank (production)", "importance (reference)",
                            "importance (production)"], rows))
        if len(names) > MAX_RANKS:
            text = f"The {MAX_RANKS} most important in the reference of {len(names)}."
            parts.append(f'<p class="note">{e(text)}</p>')
    parts.append('<p class="note">NDCG compares the production importance ranking with the reference\'s, the top '
                 'ranks weighing most (as Azure ML\'s feature attribution drift): 1 is the same order.</p>')
    return section("Feature attribution drift", "\n".join(p for p in parts if p))


def _kind_sentence(d: dict) -> str:
    metric = next((k for k in ("ndcg", "jensen_shannon", "js", "psi", "pvalue", "statistic") if k in d), None)
    threshold = d.get("threshold")
    text = "Drift" if d.get("drifted") else "No drift"
    if metric is not None:
        text += f": {metric.replace('_', ' ')} {num(d.get(metric))}"
        if threshold is not None:
            text += f" (threshold {num(threshold)})"
    return text + (f"; {d['reason']}" if d.get("reason") else "")


def _scalars(d: dict) -> str:
    rows = [[k.replace("_", " "), num(v) if not isinstance(v, str) else v] for k, v in d.items()
            if k not in ("drifted", "reason") and (v is None or isinstance(v, int | float | str | bool))]
    return table(["", ""], [[Markup(f"<th>{e(k)}</th>"), v] for k, v in rows], head=False) if rows else ""


def _pair(d: dict, first: tuple[str, ...], second: tuple[str, ...]):
    """The first dict-valued entries whose keys name the reference and the current side."""
    def find(words: tuple[str, ...]):
        return next((v for k, v in d.items() if isinstance(v, dict) and any(w in k for w in words)), None)
    return find(first), find(second)


def _shares(values: list) -> list[float]:
    numbers = [as_float(v) if math.isfinite(as_float(v)) else 0.0 for v in values]
    total = sum(numbers)
    return [v / total for v in numbers] if total > 0 else numbers


def _ranks(importance: dict) -> dict[str, int]:
    order = sorted(importance, key=lambda n: -as_float(importance[n]) if math.isfinite(as_float(importance[n]))
                   else math.inf)
    return {n: i + 1 for i, n in enumerate(order)}


def series_label(name: str) -> str:
    return mpl_text(short(name, 20))
