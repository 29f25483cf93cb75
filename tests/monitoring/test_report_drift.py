"""The report's drift sections on a real table (scikit-learn's breast cancer) through the real engine: table of
contents, dataset-level summary and rule, summary statistics, histograms at the bins' true widths, the drift-only
page of `mlops drift --html`, the newer kinds of drift, old records, and CBPE beside a measured collapse."""
from __future__ import annotations

import copy
import html
import json
import re

import numpy as np
import pandas as pd
import pytest

from monitoring.drift import compare
from monitoring.report import render_drift_report, render_report, write_drift_report
from monitoring.report_format import num
from monitoring.window import CurrentWindow
from training.reference_profile import build_profile

LONG = "a category whose name goes on and on well past any card's width"
NEW_KEYS = ("decision", "multivariate")
NEW_FEATURE_KEYS = ("edges", "summary", "pvalue_adjusted")


def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer
    df = load_breast_cancer(as_frame=True).frame.drop(columns="target")
    df["size"] = np.where(df["mean area"] > df["mean area"].median(), LONG, "small")
    reference, current = df.iloc[::2].copy(), df.iloc[1::2].copy()
    current["mean radius"] *= 1.4
    current["worst texture"] += 6
    current["size"] = LONG
    return reference, current


@pytest.fixture(scope="module")
def comparison() -> tuple[dict, dict]:
    """(profile, DriftReport.to_dict()) with the fields the report reads filled in where the engine does not
    record them yet (a decision, per-column summaries): as the engine records them."""
    reference, current = tables()
    profile = build_profile(reference)
    report = json.loads(compare(profile, CurrentWindow.for_profile(profile).update(current)).to_json())
    features = report["features"]
    drifted = [n for n, f in features.items() if f["drifted"]]
    report.setdefault("decision", {
        "drifted": bool(drifted), "share_drifted": len(drifted) / len(features), "features_tested": len(features),
        "drifted_features": drifted, "multivariate_drifted": False,
        "rule": f"Drift when more than 0% of the {len(features)} features drift after a Benjamini-Hochberg "
                "correction at FDR 0.01, or the multivariate test drifts."})
    for name, f in features.items():
        if f["kind"] == "numeric":
            f.setdefault("summary", {side: {"mean": float(frame[name].mean()), "std": float(frame[name].std()),
                                            "missing": 0, "distinct": int(frame[name].nunique())}
                                     for side, frame in (("reference", reference), ("current", current))})
    return profile, report


def result(report: dict, **extra) -> dict:
    return {"window": {"start": "2026-03-01T00:00:00Z", "end": "2026-03-01T06:00:00Z", "model": "cancer:1",
                       "rows": report["rows"], "labelled": 0}, "drift": report, **extra}


@pytest.fixture(scope="module")
def page(comparison) -> str:
    profile, report = comparison
    return render_report(profile, [result(report)], title="Monitoring of cancer:1")


def section_of(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}">')
    return page[start:page.index("</section>", start)]


def test_the_contents_link_every_section_and_every_drifted_feature(page, comparison):
    nav = page[page.index('<nav class="toc"'):page.index("</nav>")]
    anchors = re.findall(r'<section id="([^"]+)">', page)
    assert {"summary", "alerts", "data-drift", "summary-statistics", "performance", "fairness"} <= set(anchors)
    for anchor in anchors:
        assert f'href="#{anchor}"' in nav, anchor
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    drifted = comparison[1]["decision"]["drifted_features"]
    assert {"mean radius", "worst texture", "size"} <= set(drifted)
    for link in re.findall(r'href="#([^"]+)"', nav):
        assert link in ids                                  # no link goes nowhere
    assert nav.count('href="#feature-') == len(drifted)


def test_the_summary_states_the_share_drifted_and_the_rule(page, comparison):
    summary = section_of(page, "summary")
    decision = comparison[1]["decision"]
    tested = decision["features_tested"]
    assert html.escape(decision["rule"]) in summary
    assert f"{len(decision['drifted_features'])} of {tested} (" in summary and "Drift detected." in summary
    assert page.index('id="summary"') < page.index('id="data-drift"')     # at the top


def test_summary_statistics_show_reference_and_current(page, comparison):
    stats = section_of(page, "summary-statistics")
    summary = comparison[1]["features"]["mean radius"]["summary"]
    for side in ("reference", "current"):
        for stat in ("mean", "std", "distinct"):
            assert f">{num(summary[side][stat])}<" in stats, (side, stat)
    assert 'title="mean radius"' in stats


def test_numeric_bins_are_drawn_at_their_true_widths(page):
    card = page[page.index('id="feature-0"'):]
    svg = card[:card.index("</svg>")]
    widths = {float(w) for w in re.findall(r'<rect class="ref[^"]*" x="[^"]+" y="[^"]+" width="([^"]+)"', svg)}
    assert len(widths) > 5                                   # quantile bins: unequal widths, not one
    assert 'class="axis"' in svg and "<text" in svg and "rotate" not in svg
    ticks = re.findall(r"<text[^>]*>([^<]+)</text>", svg)
    assert 2 <= len(ticks) <= 6                              # a few formatted ticks on a real axis


def test_categories_are_horizontal_bars_with_long_names_cut_and_kept_as_a_tooltip(page):
    card = page[page.index('id="feature-30"'):]              # "size": the 31st column
    bars = card[:card.index("</div></div>")]
    assert '<div class="hbars">' in bars and f'title="{html.escape(LONG)}"' in bars
    assert f">{LONG}<" not in bars and LONG[:20] in bars


def test_the_drift_page_has_no_monitoring_sections(tmp_path, comparison):
    profile, report = comparison
    multivariate = {"drifted": True, "rows": 284, "reason": "",
                    "pca": {"error": 1.9, "band": [0.8, 1.2], "drifted": True},
                    "domain_classifier": {"auc": 0.81, "pvalue": 1e-6, "drifted": True,
                                          "top_features": ["mean radius", "worst texture"]}}
    path = write_drift_report(tmp_path / "drift.html", profile, {**report, "multivariate": multivariate},
                              title="Drift of b.csv against a.csv")
    page = path.read_text(encoding="utf-8")
    sections = re.findall(r'<section id="([^"]+)">', page)
    assert sections == ["summary", "data-drift", "summary-statistics", "multivariate-drift"]
    for absent in ("Performance", "Fairness", "Utilisation", "Alerts", "Concept drift", "cancer:1", "model"):
        assert absent not in page, absent
    assert "b.csv against a.csv" in page and html.escape(report["decision"]["rule"]) in page
    multi = section_of(page, "multivariate-drift")
    assert "PCA reconstruction error" in multi and "0.81" in multi and "mean radius" in multi and "<svg" in multi


def test_records_without_the_newer_keys_still_render(comparison):
    profile, report = comparison
    old = copy.deepcopy(report)
    for key in NEW_KEYS:
        old.pop(key, None)
    for f in old["features"].values():
        for key in NEW_FEATURE_KEYS:
            f.pop(key, None)
    page = render_report({}, [result(old)], title="old")                  # no profile either: no edges anywhere
    assert "recorded before the dataset-level rule" in page
    assert "Multivariate drift" not in page and "Label drift" not in page
    assert "The current window&#x27;s statistics were not recorded" in page
    assert '<div class="hbars">' in section_of(page, "data-drift")       # numeric bins without edges: bars
    with_profile = render_drift_report(profile, old, title="old")
    assert '<svg class="hist"' in with_profile                           # the profile's edges stand in


def test_label_and_attribution_drift_have_their_sections(comparison):
    profile, report = comparison
    latest = result(report, label_drift={"drifted": True, "jensen_shannon": 0.31, "threshold": 0.1, "pvalue": 1e-5,
                                         "reference": {"0": 212, "1": 357}, "current": {"0": 400, "1": 169}},
                    attribution_drift={"drifted": True, "ndcg": 0.62, "threshold": 0.9,
                                       "reference_importance": {"mean radius": 0.5, "worst texture": 0.3, "x": 0.2},
                                       "production_importance": {"mean radius": 0.1, "worst texture": 0.2, "x": 0.7}})
    page = render_report(profile, [latest], title="t")
    label, attribution = section_of(page, "label-drift"), section_of(page, "feature-attribution-drift")
    assert "jensen shannon 0.31 (threshold 0.1)" in label and '<div class="hbars">' in label
    assert "ndcg 0.62 (threshold 0.9)" in attribution
    assert re.search(r"<td>x</td><td class=n>3</td><td class=n>1</td>", attribution)   # rank 3 → rank 1
    nav = page[:page.index("</nav>")]
    assert 'href="#label-drift"' in nav and 'href="#feature-attribution-drift"' in nav
    summary = section_of(page, "summary")
    assert "label drift" in summary and "ndcg 0.62" in summary


@pytest.mark.parametrize(("measured", "warned"), [(0.62, True), (0.9, False)])
def test_cbpe_beside_a_measured_collapse_warns_that_it_cannot_see_concept_drift(comparison, measured, warned):
    profile, report = comparison
    latest = result(report, performance={"rows": 300, "metrics": {"accuracy": measured, "f1": measured},
                                         "baseline": {"accuracy": 0.93, "f1": 0.92}},
                    estimated_performance={"method": "CBPE", "calibrated": True, "rows": 569,
                                           "metrics": {"accuracy": 0.91, "f1": 0.9}})
    page = section_of(render_report(profile, [latest], title="t"), "performance")
    assert ('class="warn"' in page) is warned
    if warned:
        assert "CBPE estimates accuracy 0.91 but the labelled rows measure 0.62" in page
        assert "cannot see it" in page


def test_the_holdout_baseline_is_drawn_even_from_one_window():
    from matplotlib.figure import Figure

    from monitoring.report_plots import baseline_line
    for values in ([0.93], [float("nan"), 0.93, float("nan")], [0.9, 0.93]):
        ax = Figure().add_subplot()
        baseline_line(ax, list(range(len(values))), values, "red", "accuracy (holdout baseline)")
        line = next(x for x in ax.lines if x.get_label() == "accuracy (holdout baseline)")
        ys = [float(y) for y in np.asarray(line.get_ydata(), dtype=float) if y == y]
        assert len(ys) >= 2 and set(ys) <= {0.9, 0.93}          # a visible line, not one lone point


def test_a_wide_table_renders_fast():
    """1,000 columns' cards (the records built directly: this times the page, not the engine)."""
    import time
    rng = np.random.default_rng(0)
    edges = np.quantile(rng.lognormal(size=5000), np.linspace(0, 1, 21)).tolist()
    feature = {"kind": "numeric", "drifted": False, "metrics": {"normalized_wasserstein": 0.01, "psi": 0.02},
               "thresholds": {"normalized_wasserstein": 0.1, "psi": 0.2}, "flags": {}, "bins": edges[:-1],
               "edges": edges, "reference_counts": [250] * 20, "current_counts": rng.integers(200, 300, 20).tolist(),
               "summary": {side: {"mean": 1.6, "std": 2.1, "missing": 0, "distinct": None}
                           for side in ("reference", "current")}}
    report = {"rows": 10_000, "features": {f"c{i}": feature for i in range(1000)}, "outputs": {}}
    render_drift_report({}, report, title="warm")            # imports out of the timing
    started = time.perf_counter()
    page = render_drift_report({}, report, title="wide")
    assert time.perf_counter() - started < 3.0 and page.count('<svg class="hist"') == 1000


def test_a_loss_estimate_beside_measured_errors_far_above_it_warns_too(comparison):
    profile, report = comparison
    latest = result(report, task="regression", performance={"rows": 200, "metrics": {"mae": 12.0, "rmse": 15.0},
                                                            "baseline": {"mae": 5.0, "rmse": 6.5}},
                    estimated_performance={"method": "DLE", "rows": 284, "metrics": {"mae": 5.2, "rmse": 6.6},
                                           "reference": {"rows": 150, "mae": 5.0}})
    page = section_of(render_report(profile, [latest], title="t"), "performance")
    assert 'class="warn"' in page and "estimates MAE 5.2 but the labelled rows measure 12" in page
