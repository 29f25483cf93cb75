"""One monitoring pass (monitoring.monitor.evaluate: drift, prediction drift, quality, performance, concept
drift, CBPE, fairness) on generated labelled windows, and fairness against fairlearn run on the rows.

    .venv/bin/python bench/monitor.py [--rows 100000,1000000]

The model is a scikit-learn LogisticRegression trained on 20k rows (6 numeric + 2 categorical features,
one of them the sensitive column); each window is served by it, with the labels of a changed concept, so
every signal has work to do. Printed per size: the pass's wall time and the peak RSS growth of this
process during it, then fairness alone against fairlearn's MetricFrame and differences computed on the
rows (the usual way to call it), with their ratio. Always exits 0.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FEATURES = [f"x{i}" for i in range(6)] + ["region", "group"]


def generate(n: int, seed: int, flipped: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(0, 1, n) for i in range(6)})
    frame["region"] = rng.choice(["north", "south", "east", "west"], n)
    frame["group"] = rng.choice(["a", "b"], n, p=[0.6, 0.4])
    logit = 1.5 * frame["x0"] - frame["x1"] + 0.5 * frame["x2"] + np.where(frame["group"] == "a", 0.5, -0.5)
    if flipped:
        logit = -logit
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def encode(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.get_dummies(frame[FEATURES], columns=["region", "group"], dtype=float)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000")
    sizes = [int(x) for x in parser.parse_args().rows.split(",")]

    from sklearn.linear_model import LogisticRegression

    from monitoring.fairness import fairness
    from monitoring.monitor import MonitorConfig, evaluate
    from training.evaluation import calibration, classification_metrics
    from training.reference_profile import build_profile

    train, hold = generate(20_000, 1), generate(5_000, 2)
    model = LogisticRegression(max_iter=500).fit(encode(train), train["y"])
    columns = encode(train).columns
    proba = model.predict_proba(encode(hold).reindex(columns=columns, fill_value=0.0))
    metrics = {"classes": [0, 1], "positive_class": 1, "rows": {"holdout": len(hold)},
               "class_balance": {"0": int((hold.y == 0).sum()), "1": int((hold.y == 1).sum())},
               "metrics": classification_metrics(hold["y"], proba.argmax(1), proba, [0, 1], [0, 1]),
               "calibration": calibration(hold["y"], proba, [0, 1], [0, 1])}
    profile = build_profile(train[[*FEATURES, "y"]], "y",
                            outputs={"prediction": pd.Series(model.predict(encode(train)))})
    config = MonitorConfig(sensitive_column="group", min_labels=100)
    for n in sizes:
        window = generate(n, 3, flipped=True)
        scores = model.predict_proba(encode(window).reindex(columns=columns, fill_value=0.0))
        ids = np.char.add("r", np.arange(n).astype(str))
        inputs = window[FEATURES].assign(request_id=ids)
        outputs = pd.DataFrame({"prediction": scores.argmax(1), "probability_0": scores[:, 0],
                                "probability_1": scores[:, 1], "request_id": ids})
        labels = dict(zip(ids, window["y"].astype(str)))          # as a CSV would give them
        before = peak_mib()
        started = time.perf_counter()
        result = evaluate(profile, metrics, inputs, outputs, labels, config=config)
        seconds = time.perf_counter() - started
        print(f"\n== {n:,} labelled rows x {len(FEATURES)} features")
        print(f"  monitoring pass  {seconds:6.2f} s   peak RSS +{max(peak_mib() - before, 0):.0f} MiB   alerts: "
              + ", ".join(a.signal for a in result.alerts))

        truth, predicted, group = window["y"].to_numpy(), outputs["prediction"].to_numpy(), window["group"]
        started = time.perf_counter()
        ours = fairness(truth, predicted, group, positive_label=1, column="group")
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        from fairlearn import metrics as fm
        from sklearn.metrics import accuracy_score
        fm.MetricFrame(metrics={"selection_rate": fm.selection_rate, "accuracy": accuracy_score,
                                "false_positive_rate": fm.false_positive_rate,
                                "false_negative_rate": fm.false_negative_rate,
                                "true_positive_rate": fm.true_positive_rate},
                       y_true=truth, y_pred=predicted, sensitive_features=group)
        dpd = fm.demographic_parity_difference(truth, predicted, sensitive_features=group)
        eod = fm.equalized_odds_difference(truth, predicted, sensitive_features=group)
        rows_s = time.perf_counter() - started
        same = (abs(dpd - ours.demographic_parity_difference) < 1e-12
                and abs(eod - ours.equalized_odds_difference) < 1e-12)
        print(f"  fairness         {ours_s:6.2f} s   fairlearn on the rows {rows_s:6.2f} s   "
              f"{rows_s / ours_s:5.1f}x faster; same differences: {same}")


if __name__ == "__main__":
    main()
