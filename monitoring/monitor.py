"""One monitoring pass over a window: every signal, and the alerts they raise. Plain computation over
data already read: the monitoring job (monitoring/run.py) calls `evaluate`, and the function app adds the
deployment's utilisation from the platform's metrics when the job ends (lifecycle/steps/monitoring_runs.py).

Signals and the alerts they raise (alert id = endpoint/deployment/model/signal, so a signal that stays
breached is one alert, and one that clears is published as Resolved):

data_drift             DriftDetected         a feature drifted by its decisive metrics (monitoring.drift)
prediction_drift       DriftDetected         the model's outputs drifted
data_quality           DriftDetected         null, type-error or out-of-range rate over its threshold
concept_drift          PerformanceDegraded   labelled performance significantly below the holdout, or the
                                             feature→label relation changed (monitoring.performance; a
                                             regression model: errors, residuals, monitoring.regression)
estimated_performance  PerformanceDegraded   no labels, and the estimate worse than the holdout by more than
                                             the tolerance: CBPE for a calibrated classifier, direct loss
                                             estimation for a regression model (monitoring.dle)
fairness               PerformanceDegraded   binary: demographic parity or equalized odds difference over its
                                             limit; multiclass: accuracy or macro F1 gap; regression: MAE gap
                                             (monitoring.fairness_gaps)
multivariate_drift     DriftDetected         the features taken together drifted: PCA reconstruction error
                                             outside its reference band, or a domain classifier tells the
                                             window's rows from the reference's (monitoring.multivariate)
label_drift            DriftDetected         the labels that arrived for the window's requests are distributed
                                             unlike the training labels (monitoring.label_drift)
attribution_drift      DriftDetected         the ranking of the features by their information on the label,
                                             on labelled production rows against the holdout, fell below
                                             the NDCG threshold (monitoring.attribution_drift)

Label and attribution drift need at least min_labels labelled rows, attribution drift the holdout rows
saved with the model (monitoring.holdout) too.

The model's task (classification or regression, monitoring.task) chooses the signals' methods: `evaluate`
takes it from its caller, else from metrics.json, else from the predictions.

Utilisation (request rate, latency, CPU, memory) gives a scaling recommendation in the result; it is
not an alert: scaling is Azure ML autoscale's job."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, cast

import pandas as pd

from monitoring.drift import DriftReport, Thresholds, compare
from monitoring.ground_truth import PREDICTION, REQUEST_ID, probabilities
from monitoring.json_values import finite_number, json_safe
from monitoring.task import REGRESSION, model_task
from monitoring.window import CurrentWindow

DRIFT_DETECTED = "MLOps.DriftDetected"
PERFORMANCE_DEGRADED = "MLOps.PerformanceDegraded"
# mutual information on 100 labelled rows of a table with little signal (diabetes) reorders the features by
# chance in 7 % of random halves; from 200 rows, none in 30
ATTRIBUTION_MIN_LABELS = 200
SIGNAL_EVENTS = {"data_drift": DRIFT_DETECTED, "prediction_drift": DRIFT_DETECTED, "data_quality": DRIFT_DETECTED,
                 "concept_drift": PERFORMANCE_DEGRADED, "estimated_performance": PERFORMANCE_DEGRADED,
                 "fairness": PERFORMANCE_DEGRADED, "multivariate_drift": DRIFT_DETECTED,
                 "label_drift": DRIFT_DETECTED, "attribution_drift": DRIFT_DETECTED}


@dataclass(frozen=True)
class MonitorConfig:
    thresholds: Thresholds = Thresholds()
    min_labels: int = 100
    sensitive_column: str = ""
    estimate_tolerance: float = 0.05          # CBPE: alert when the estimate is this far below the holdout
    estimate_error_tolerance: float = 0.1     # DLE: alert when the estimated MAE or RMSE is this share above it

    @classmethod
    def create(cls, threshold_overrides: dict[str, float], min_labels: int = 100,
               sensitive_column: str = "") -> MonitorConfig:
        """threshold_overrides: DRIFT_THRESHOLDS as {metric: threshold} (monitoring.drift.Thresholds' fields)."""
        known = {f.name for f in fields(Thresholds)}
        unknown = sorted(set(threshold_overrides) - known)
        if unknown:
            raise ValueError(f"DRIFT_THRESHOLDS names unknown metrics {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        # the overrides name Thresholds' numeric fields (only known names get here)
        return cls(thresholds=replace(Thresholds(), **cast(dict[str, Any], threshold_overrides)),
                   min_labels=int(min_labels), sensitive_column=sensitive_column)


@dataclass(frozen=True)
class MonitorAlert:
    signal: str
    alert_id: str
    condition: str                          # Fired | Resolved
    summary: str
    evidence: dict = field(default_factory=dict)

    @property
    def event_type(self) -> str:
        return SIGNAL_EVENTS[self.signal]

    def data(self) -> dict:
        """The event's data: small (Event Grid takes up to 1 MB per event), the full evidence stays in the run."""
        return {"alertId": self.alert_id, "condition": self.condition, "signal": self.signal, "summary": self.summary,
                "evidence": json_safe(self.evidence)}


@dataclass
class MonitorResult:
    window: dict
    drift: DriftReport
    labelled: int = 0
    performance: dict | None = None
    estimated_performance: dict | None = None
    concept_drift: dict | None = None
    fairness: dict | None = None
    utilisation: dict | None = None
    label_drift: dict | None = None
    attribution_drift: dict | None = None
    alerts: list[MonitorAlert] = field(default_factory=list)
    task: str = "classification"

    def to_dict(self) -> dict:
        return json_safe({"task": self.task,
                        "window": {**self.window, "rows": self.drift.rows, "labelled": self.labelled},
                        "drift": self.drift.to_dict(), "performance": self.performance,
                        "estimated_performance": self.estimated_performance, "concept_drift": self.concept_drift,
                        "fairness": self.fairness, "utilisation": self.utilisation,
                        "label_drift": self.label_drift, "attribution_drift": self.attribution_drift,
                        "alerts": [{"type": a.event_type, "condition": a.condition, "signal": a.signal,
                                    "alert_id": a.alert_id, "summary": a.summary} for a in self.alerts]})


def evaluate(profile: dict, metrics: dict, inputs: pd.DataFrame, outputs: pd.DataFrame, labels: dict,
             *, config: MonitorConfig = MonitorConfig(), window: dict | None = None,
             previous_alerts: tuple[str, ...] = (), current: CurrentWindow | None = None,
             task: str | None = None, holdout: pd.DataFrame | None = None) -> MonitorResult:
    """profile/metrics: what training saved with the model; inputs/outputs: the collected rows (request_id
    in both); labels: request_id → ground truth. `current`: the window's drift counts already made (a
    large window read in chunks); inputs then need only hold the labelled requests (and, for a regression
    model, a sample of the others for the loss estimate). task: the model's ("classification" or
    "regression"; None: metrics.json's, else what the predictions look like). holdout: the model's holdout
    rows (monitoring.holdout), for a regression model's loss estimate and residuals, and attribution drift;
    None skips those."""
    window = dict(window or {})
    drift = (compare(profile, current, config.thresholds) if current is not None
             else _drift(profile, inputs, outputs, config.thresholds))
    predictions = outputs[PREDICTION] if PREDICTION in outputs.columns else None
    result = MonitorResult(window, drift, task=model_task(task, metrics, profile, predictions))
    if result.task == REGRESSION:
        _regression(result, profile, metrics, inputs, outputs, labels, config, holdout)
    else:
        _classification(result, profile, metrics, inputs, outputs, labels, config, holdout)
    result.alerts = _alerts(result, metrics, config, window, previous_alerts)
    return result


def _classification(result: MonitorResult, profile: dict, metrics: dict, inputs: pd.DataFrame, outputs: pd.DataFrame,
                    labels: dict, config: MonitorConfig, holdout: pd.DataFrame | None = None) -> None:
    classes = list(metrics.get("classes") or [])
    proba = probabilities(outputs, classes)
    if classes and proba is not None and len(outputs):
        from monitoring.cbpe import estimate_performance
        result.estimated_performance = estimate_performance(proba, classes, metrics.get("calibration")).to_dict()
    joined = _joined(inputs, outputs, labels, classes)
    result.labelled = len(joined)
    if classes and len(joined) >= config.min_labels:
        _labelled_signals(result, profile, metrics, joined, classes, config)
        _label_signals(result, profile, metrics, joined, config, holdout)


def _regression(result: MonitorResult, profile: dict, metrics: dict, inputs: pd.DataFrame, outputs: pd.DataFrame,
                labels: dict, config: MonitorConfig, holdout: pd.DataFrame | None) -> None:
    from monitoring.dle import estimate_loss
    from monitoring.holdout import RESIDUAL, holdout_errors
    target = metrics.get("target") or profile.get("target")
    features = list(profile.get("features") or {})
    if len(outputs) and PREDICTION in outputs.columns:
        rows = _with_inputs(outputs[[c for c in (REQUEST_ID, PREDICTION) if c in outputs.columns]], inputs)
        result.estimated_performance = estimate_loss(holdout, rows, target=target, features=features).to_dict()
    joined = _joined_targets(inputs, outputs, labels)
    result.labelled = len(joined)
    if len(joined) < config.min_labels:
        return
    _label_signals(result, profile, metrics, joined, config, holdout)
    from monitoring.regression import regression_concept_drift, regression_performance
    y_true, y_pred = joined["label"].to_numpy(), joined[PREDICTION].to_numpy()
    errors = holdout_errors(holdout, target)
    residuals = errors[RESIDUAL].to_numpy() if errors is not None else None
    result.performance = regression_performance(y_true, y_pred, metrics.get("metrics"), residuals).to_dict()
    result.concept_drift = regression_concept_drift(
        y_true, y_pred, training_metrics=metrics, features=joined[[c for c in features if c in joined.columns]],
        profile=profile, holdout=errors).to_dict()
    if config.sensitive_column and config.sensitive_column in joined.columns:
        from monitoring.fairness_gaps import regression_fairness
        result.fairness = regression_fairness(y_true, y_pred, joined[config.sensitive_column],
                                              column=config.sensitive_column).to_dict()


def _drift(profile: dict, inputs: pd.DataFrame, outputs: pd.DataFrame, thresholds: Thresholds) -> DriftReport:
    current = CurrentWindow.for_profile(profile)
    if len(inputs):
        current.update(inputs.drop(columns=[REQUEST_ID], errors="ignore"))
    if len(outputs) and current.outputs:
        current.update_outputs(outputs)
    return compare(profile, current, thresholds)


def _joined(inputs: pd.DataFrame, outputs: pd.DataFrame, labels: dict, classes: list) -> pd.DataFrame:
    """The labelled requests: outputs (prediction, probabilities) joined to labels, with their inputs."""
    if not labels or REQUEST_ID not in outputs.columns:
        return pd.DataFrame()
    from monitoring.ground_truth import outputs_with_labels
    rows = outputs_with_labels(outputs, labels, classes or None)
    if len(rows) and REQUEST_ID in inputs.columns:
        features = inputs.drop_duplicates(REQUEST_ID, keep="last")
        # inner: the two collections are read one after the other, so the later read may hold requests
        # whose inputs the earlier one had not seen yet
        rows = rows.merge(features, on=REQUEST_ID, how="inner", suffixes=("", "_input"))
    return rows


def _joined_targets(inputs: pd.DataFrame, outputs: pd.DataFrame, labels: dict) -> pd.DataFrame:
    """A regression model's labelled requests: outputs joined to their true values (numbers), with their inputs."""
    if not labels or REQUEST_ID not in outputs.columns:
        return pd.DataFrame()
    from monitoring.ground_truth import outputs_with_targets
    return _with_inputs(outputs_with_targets(outputs, labels), inputs)


def _with_inputs(rows: pd.DataFrame, inputs: pd.DataFrame) -> pd.DataFrame:
    """rows with the inputs of their request (inner, as _joined: inputs may lag the outputs)."""
    if not len(rows) or REQUEST_ID not in inputs.columns or REQUEST_ID not in rows.columns:
        return rows
    features = inputs.drop_duplicates(REQUEST_ID, keep="last")
    return rows.merge(features, on=REQUEST_ID, how="inner", suffixes=("", "_input"))


def _label_signals(result: MonitorResult, profile: dict, metrics: dict, joined: pd.DataFrame, config: MonitorConfig,
                   holdout: pd.DataFrame | None) -> None:
    """Label drift (the window's labels against the training labels) and attribution drift (the features'
    information on the label, production against the holdout rows; skipped without them)."""
    from monitoring.label_drift import label_drift
    result.label_drift = label_drift(profile.get("target_profile"), joined["label"], config.thresholds)
    target = metrics.get("target") or profile.get("target")
    if len(joined) < ATTRIBUTION_MIN_LABELS:
        result.attribution_drift = {"drifted": False, "rows": {"current": len(joined)},
                                    "reason": f"{len(joined)} labelled rows: attribution drift needs "
                                              f"{ATTRIBUTION_MIN_LABELS} to rank the features steadily"}
    elif holdout is not None and target and target in holdout.columns:
        from monitoring.attribution_drift import attribution_drift
        result.attribution_drift = attribution_drift(
            holdout, holdout[target], joined, joined["label"], profile.get("features") or {}, config.thresholds,
            regression=result.task == REGRESSION)


def _labelled_signals(result: MonitorResult, profile: dict, metrics: dict, joined: pd.DataFrame, classes: list,
                      config: MonitorConfig) -> None:
    from monitoring.performance import concept_drift, performance
    y_true, y_pred = joined["label"].to_numpy(), joined["prediction"].to_numpy()
    proba = probabilities(joined, classes)
    result.performance = performance(y_true, y_pred, proba, classes, metrics.get("metrics")).to_dict()
    features = joined[[c for c in profile.get("features", {}) if c in joined.columns]]
    result.concept_drift = concept_drift(y_true, y_pred, classes, training_metrics=metrics, proba=proba,
                                         features=features, profile=profile).to_dict()
    if not config.sensitive_column or config.sensitive_column not in joined.columns:
        return
    # demographic parity and equalized odds are defined for a binary decision; several classes: performance gaps
    if len(classes) == 2:
        from monitoring.fairness import fairness
        positive = metrics.get("positive_class", classes[-1])
        result.fairness = fairness(y_true, y_pred, joined[config.sensitive_column], positive_label=positive,
                                   column=config.sensitive_column).to_dict()
    elif len(classes) > 2:
        from monitoring.fairness_gaps import multiclass_fairness
        result.fairness = multiclass_fairness(y_true, y_pred, joined[config.sensitive_column], classes=classes,
                                              column=config.sensitive_column).to_dict()


def _alerts(result: MonitorResult, metrics: dict, config: MonitorConfig, window: dict,
            previous: tuple[str, ...]) -> list[MonitorAlert]:
    base = "/".join(str(window.get(k, "")) for k in ("endpoint", "deployment", "model"))
    fired: list[MonitorAlert] = []

    def fire(signal: str, summary: str, evidence: dict) -> None:
        fired.append(MonitorAlert(signal, f"{base}/{signal}", "Fired", summary, evidence))

    drift = result.drift
    if drift.drifted_features:
        fire("data_drift", f"input drift in {', '.join(drift.drifted_features)}",
             {n: _decisive(drift.features[n]) for n in drift.drifted_features})
    if drift.drifted_outputs:
        fire("prediction_drift", f"prediction drift in {', '.join(drift.drifted_outputs)}",
             {n: _decisive(drift.outputs[n]) for n in drift.drifted_outputs})
    if drift.quality_issues:
        features = {**drift.features, **drift.outputs}
        fire("data_quality", f"data quality breached in {', '.join(drift.quality_issues)}",
             {n: {k: v for k, v in features[n].quality.items()} for n in drift.quality_issues})
    multivariate = getattr(drift, "multivariate", None)
    if multivariate and multivariate.get("drifted"):
        fire("multivariate_drift", multivariate.get("reason") or "the features taken together drifted",
             {"rows": multivariate.get("rows"),
              "pca": {k: v for k, v in (multivariate.get("pca") or {}).items() if k in ("error", "band", "drifted")},
              "domain_classifier": {k: v for k, v in (multivariate.get("domain_classifier") or {}).items()
                                    if k in ("auc", "pvalue", "drifted", "top_features")}})
    for signal in ("label_drift", "attribution_drift"):
        found = getattr(result, signal)
        if found and found.get("drifted"):
            fire(signal, found.get("reason") or signal.replace("_", " "),
                 {k: v for k, v in found.items() if k not in ("reason", "reference_importance", "current_importance")})
    concept = result.concept_drift
    if concept and concept.get("detected"):
        evidence = {"performance_drop": concept.get("performance_drop"),
                    "relation": {k: v for k, v in (concept.get("relation") or {}).items() if v.get("drifted")}}
        if (concept.get("residuals") or {}).get("drifted"):
            evidence["residuals"] = {k: v for k, v in concept["residuals"].items() if k != "reason"}
        fire("concept_drift", _summary(concept.get("reasons"), "concept drift"), evidence)
    estimate = result.estimated_performance
    if result.performance is None and estimate:
        worst = _estimate_breach(estimate, metrics, config)
        if worst:
            evidence = {"method": estimate.get("method"), "estimated": estimate.get("metrics"),
                        "holdout": metrics.get("metrics")}
            fire("estimated_performance", worst, evidence)
    if result.fairness and result.fairness.get("breached"):
        fire("fairness",
             _summary([r for r in result.fairness.get("reasons") or [] if "above" in r], "fairness breached"),
             {"sensitive_column": result.fairness.get("sensitive_column"),
              **(result.fairness.get("differences") or {k: result.fairness.get(k) for k in (
                  "demographic_parity_difference", "equalized_odds_difference")})})
    now_firing = {a.alert_id for a in fired}
    resolved = [MonitorAlert(pid.rsplit("/", 1)[-1], pid, "Resolved", f"{pid.rsplit('/', 1)[-1]} no longer breached")
                for pid in previous if pid not in now_firing and pid.rsplit("/", 1)[-1] in SIGNAL_EVENTS]
    return fired + resolved


def _estimate_breach(estimate: dict, metrics: dict, config: MonitorConfig) -> str | None:
    """The summary of an estimate worse than the holdout by more than the tolerance, else None. CBPE (a
    calibrated classifier): a score that fell by more than estimate_tolerance; DLE (a regression model): an
    error that rose by more than estimate_error_tolerance of the holdout's."""
    holdout = metrics.get("metrics") or {}
    if estimate.get("method") == "DLE":
        baseline = {m: finite_number(holdout.get(m)) or finite_number((estimate.get("reference") or {}).get(m))
                    for m in (estimate.get("metrics") or {})}
        rises = {m: v / baseline[m] - 1 for m, v in (estimate.get("metrics") or {}).items()
                 if v is not None and baseline[m]}
        worst = max(rises, key=rises.__getitem__, default=None)
        if worst and rises[worst] > config.estimate_error_tolerance:
            return (f"estimated {worst} (direct loss estimation, no labels) is {rises[worst]:.0%} above the "
                    f"holdout's: {estimate['metrics'][worst]:.4g} against {baseline[worst]:.4g}")
        return None
    if not estimate.get("calibrated"):
        return None
    drops = {m: holdout.get(m, 0) - v for m, v in (estimate.get("metrics") or {}).items()
             if v is not None and holdout.get(m) is not None}
    worst = max(drops, key=drops.__getitem__, default=None)
    if worst and drops[worst] > config.estimate_tolerance:
        return f"estimated {worst} (CBPE, no labels) is {drops[worst]:.3f} below the holdout"
    return None


def _summary(reasons: list[str] | None, fallback: str) -> str:
    """Every reason, one after the other: the alert's record keeps only this sentence, and a person on call
    should not have to open the evidence to learn what "and 10 more" were."""
    reasons = [r.rstrip(".") for r in reasons or [] if r]
    return "; ".join(reasons) if reasons else fallback


def _decisive(feature) -> dict:
    return {"kind": feature.kind, **{k: feature.metrics.get(k) for k in feature.thresholds},
            "thresholds": feature.thresholds}


def _seconds(window: dict) -> float:
    try:
        start, end = pd.Timestamp(window["start"]), pd.Timestamp(window["end"])
        return max((end - start).total_seconds(), 1.0)
    except (KeyError, ValueError):
        return 1.0
