"""The monitoring report: one self-contained, escaped HTML page over results from the real drift engine."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from monitoring.drift import compare
from monitoring.report import render_report, write_report
from monitoring.window import CurrentWindow
from training.reference_profile import build_profile

SCRIPT = "<script>alert(1)</script>"


def frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """income and the <script> column shift with `shift`; city's mix changes; age stays put."""
    rng = np.random.default_rng(seed)
    mix = np.array([0.5, 0.3, 0.2]) if shift == 0 else np.array([0.2, 0.3, 0.5])
    return pd.DataFrame({"age": rng.normal(40, 10, n), "income": rng.normal(50_000 + 20_000 * shift, 10_000, n),
                         "city": rng.choice(["Oslo", "Lima", "Pune"], n, p=mix),
                         SCRIPT: rng.normal(shift, 1, n), "tenure": rng.integers(0, 20, n)})


def result(profile: dict, current: pd.DataFrame, day: int, *, labelled: bool = True) -> dict:
    drift = json.loads(compare(profile, CurrentWindow.for_profile(profile).update(current)).to_json())
    alerts = ([{"type": "MLOps.DriftDetected", "condition": "data drift",
                "summary": ", ".join(drift["drifted_features"])}]
              if drift["drifted"] else [])
    return {
        "window": {"start": f"2026-03-{day:02d}T00:00:00Z", "end": f"2026-03-{day:02d}T06:00:00Z", "endpoint": "loans",
                   "deployment": "blue", "model": "loans:4", "rows": len(current), "labelled": 300 if labelled else 0},
        "drift": drift,
        "performance": {"rows": 300, "metrics": {"accuracy": 0.9 - day / 100, "f1": 0.8, "precision": 0.8,
                                                 "recall": 0.8, "roc_auc": 0.9},
                        "baseline": {"accuracy": 0.91, "f1": 0.82}, "classes": [0, 1]} if labelled else None,
        "estimated_performance": {"method": "CBPE", "calibrated": True, "calibration_error": 0.02, "rows": len(current),
                                  "metrics": {"accuracy": 0.88, "f1": 0.79, "precision": 0.8, "recall": 0.78}},
        "concept_drift": {"detected": day > 2, "reasons": ["accuracy fell 0.12 below the holdout"] if day > 2 else [],
                          "performance_drop": {"accuracy": {"current": 0.79, "baseline": 0.91, "drop": 0.12,
                                                            "pvalue": 1e-4, "significant": True}},
                          "relation": {"income": {"shift": 0.2, "pvalue": 0.001, "drifted": True}}}
        if labelled else None,
        "fairness": {"sensitive_column": "city", "groups": {
                         g: {"count": 100, "selection_rate": s, "accuracy": 0.9, "false_positive_rate": 0.1,
                             "false_negative_rate": 0.1, "true_positive_rate": 0.9}
                         for g, s in (("Oslo", 0.5), ("Lima", 0.3))},
                     "excluded_groups": ["Pune"], "demographic_parity_difference": 0.2, "demographic_parity_ratio": 0.6,
                     "equalized_odds_difference": 0.05, "thresholds": {"demographic_parity_difference": 0.1,
                                                                       "equalized_odds_difference": 0.1},
                     "breached": True, "reasons": ["demographic parity difference 0.2 > 0.1"]} if labelled else None,
        "utilisation": {"deployment": "blue", "request_rate": 2.5, "latency_ms": {"p50": 2.0, "p95": 8.0},
                        "error_rate": 0.0, "cpu_percent": 9.0, "memory_percent": 31.0, "instances": 1,
                        "recommendation": "scale down", "reasons": ["CPU under 20% of one instance"]},
        "alerts": alerts}


@pytest.fixture(scope="module")
def profile() -> dict:
    return build_profile(frame(3000, 1))


@pytest.fixture(scope="module")
def results(profile) -> list[dict]:
    return [result(profile, frame(1000, 2), 1), result(profile, frame(1000, 3, 0.5), 2, labelled=False),
            result(profile, frame(1000, 4, 1.0), 3)]


@pytest.fixture(scope="module")
def page(profile, results) -> str:
    return render_report(profile, results, title="Monitoring of loans:4")


def test_one_self_contained_document(page):
    assert page.startswith("<!DOCTYPE html>") and page.count("<html") == 1 and page.rstrip().endswith("</html>")
    assert page.count("<body") == 1 and page.count("</body>") == 1
    assert not re.search(r'<(link|img|iframe|object)\b|\bsrc=|href="(?!#)', page)   # nothing fetched from outside
    assert page.count("<svg") == page.count("</svg>") > 0
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))                       # the inline SVGs' ids do not collide


def test_every_drifted_feature_has_its_plot(page, results):
    drifted = results[-1]["drift"]["drifted_features"]
    assert {"income", "city", SCRIPT} <= set(drifted) and "age" not in drifted
    cards = re.split(r'<div class="card(?=[ "])', page)[1:]
    for name in drifted:
        escaped = name.replace("<", "&lt;").replace(">", "&gt;")
        card = next(c for c in cards if c.startswith(' drifted"') and f">{escaped} <span class=\"badge\">drifted" in c)
        assert '<svg class="hist"' in card or '<div class="hbars">' in card


def test_text_is_escaped(page):
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_drifted_features_come_first(page, results):
    features = results[-1]["drift"]["features"]
    start = page.index('<section id="data-drift">')
    table = page[start:page.index("</section>", start)]
    rows = re.findall(r"<tr><td>(.*?)</td>", table)
    flags = [features[html_unescape(r)]["drifted"] for r in rows]
    assert len(rows) == len(features) and flags == sorted(flags, reverse=True)
    first_card = min(i for i in (table.find('<div class="card"'), table.find('<div class="card drifted"')) if i >= 0)
    assert table.index('<div class="card drifted"') == first_card


def test_sections_and_threshold_lines(page):
    for heading in ("Alerts", "Data drift", "Prediction drift", "Drift over time", "Performance", "Concept drift",
                    "Fairness", "Utilisation"):
        assert f"<h2>{heading}</h2>" in page
    assert "MLOps.DriftDetected" in page and "scale down" in page and "demographic parity difference" in page
    assert "holdout baseline" in page and "threshold" in page
    assert "no model output is profiled" in page             # prediction drift without outputs in the profile


@pytest.mark.parametrize("missing", [None, "absent"])
def test_missing_sections_are_explained(profile, results, missing):
    bare = {"window": results[0]["window"], "drift": results[0]["drift"]}
    if missing is None:
        bare.update(performance=None, estimated_performance=None, concept_drift=None, fairness=None,
                    utilisation=None, alerts=None)
    page = render_report(profile, [results[0], bare], title="t")
    assert "No labels in this window, and no estimate" in page
    assert "No labels in this window: concept drift needs them" in page
    assert "No fairness result" in page and "No utilisation figures" in page
    assert "No alerts in the latest window" in page


def test_degenerate_inputs_do_not_fail(tmp_path):
    assert "No monitoring results yet" in render_report({}, [], title="empty")
    assert "No drift result for this window" in render_report({"features": {}}, [{}], title="bare")
    page = render_report({"features": {}}, [{"window": {"end": "not a time"}, "drift": {"features": {"x": {
        "kind": "numeric", "drifted": True, "metrics": {"normalized_wasserstein": None}, "bins": [],
        "reference_counts": [], "current_counts": []}}}}], title="odd")
    assert "No reference profile" in page and "No bins to plot" in page
    path = write_report(tmp_path / "r" / "report.html", {}, [], "empty")
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def html_unescape(text: str) -> str:
    import html
    return html.unescape(text)


# ---- the model's task decides the performance and fairness sections --------------------------------------

def regression_results() -> tuple[dict, list[dict]]:
    """Two windows of a real regression model (tests/monitoring/test_regression.py): a labelled one with a
    sensitive column, then one without labels, where only direct loss estimation speaks."""
    from monitoring.monitor import MonitorConfig
    from tests.monitoring.test_regression import Regressor
    model = Regressor()
    first = model.check(model.window, config=MonitorConfig(min_labels=50, sensitive_column="sex")).to_dict()
    second = model.check(model.frame.sort_values("bmi").iloc[-150:], labelled=False).to_dict()
    first["window"]["end"], second["window"]["end"] = "2026-03-01T06:00:00Z", "2026-03-02T06:00:00Z"
    return model.profile, [first, second]


def test_a_regression_model_gets_errors_predicted_against_actual_and_residuals():
    profile, results = regression_results()
    labelled = render_report(profile, results[:1], title="progression")
    for text in ("<h3>Predicted against actual</h3>", "<h3>Residuals</h3>", "<h3>Errors over time</h3>",
                 "<td>MAE</td>", "<td>R²</td>", "Estimate: DLE", "Error by segment of each feature", "worse by",
                 "Residuals against the holdout", "mean residual", "relative mae gap"):
        assert text in labelled, text
    for classifier_only in ("accuracy", "selection rate", "roc_auc", "CBPE", "calibrat", "confusion"):
        assert classifier_only not in labelled.lower(), classifier_only
    assert labelled.count("<svg") >= 5
    unlabelled = render_report(profile, results, title="progression")
    assert "No labels in this window: only the estimate (direct loss estimation) is shown." in unlabelled
    assert "Predicted against actual" not in unlabelled and "<h3>Errors over time</h3>" in unlabelled


def test_a_regression_model_without_holdout_rows_says_why_there_is_no_estimate():
    profile, results = regression_results()
    latest = {**results[1], "estimated_performance": {"method": "DLE", "rows": 150, "metrics": {}, "reference": {},
                                                      "reason": "the model was saved without its holdout rows"}}
    page = render_report(profile, [latest], title="progression")
    assert "no estimate of the error (the model was saved without its holdout rows)" in page


def test_a_multiclass_model_gets_accuracy_and_macro_f1_per_group():
    fairness = {"task": "multiclass", "sensitive_column": "site", "breached": True, "excluded_groups": [],
                "groups": {g: {"count": 75, "accuracy": a, "macro_f1": f} for g, a, f in (("a", 0.97, 0.96),
                                                                                           ("b", 0.3, 0.15))},
                "differences": {"accuracy_difference": 0.67, "macro_f1_difference": 0.81,
                                "demographic_parity_difference": 0.7},
                "thresholds": {"accuracy_difference": 0.1, "macro_f1_difference": 0.1},
                "reasons": ["Accuracy difference on 'site' is 0.670, above the 0.1 threshold"]}
    page = render_report({}, [{"task": "classification", "fairness": fairness}], title="iris")
    assert "<th>macro F1</th>" in page and "Fairness threshold breached." in page
    assert "selection rate" not in page and "accuracy difference" in page
