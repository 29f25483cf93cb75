"""The canary judge: is the new colour (canary) worse than the live one (baseline) over the same window?

Four checks, each a statistical test plus a limit a person would set, so that a difference has to be both
real (significant at `alpha`) and large enough to matter before it fails a rollout:

- errors       server error (5xx) rates: two-proportion z-test, Fisher's exact test where counts are
               small; plus an exact binomial test against the absolute ceiling `max_error_rate`.
- latency      Mann-Whitney U (canary slower) and p95/p99 limits relative to the baseline.
- predictions  classification: Jensen-Shannon distance between predicted-label distributions, with
               chi-squared at the stricter `prediction_alpha` (re-tested every tick, and two good models
               differ somewhat). Regression: normalized Wasserstein distance between the predicted values
               (in standard deviations of the baseline's), with Kolmogorov-Smirnov at `prediction_alpha`.
- accuracy     where ground truth exists on both sides. Classification: accuracy drop, two-proportion test.
               Regression: the rise of the mean absolute error relative to the baseline's, Welch's test on
               the absolute errors (the check keeps its name, so that readers of the evidence find it).

The policy's `task` ("classification", the default, or "regression": the model's metrics.json "task")
chooses between the two; the values are not guessed from, except that fractional predictions under a
classification policy are compared as values rather than counted as thousands of labels.

Where ground truth exists on both sides and the canary is no less accurate, a shift of the predictions
does not fail the rollout: a model retrained after the concept changed is meant to predict differently,
and the labels say whether it does so for the better. While labels are arriving for the baseline but
not yet enough for the canary, a shift waits for them instead of failing.

A failure can be decided as soon as it is significant; a pass needs `min_requests` on both sides and no
check waiting for more data. The statistics live in canary_stats.py (plain Python: no numpy or scipy, so
importing this module and calling it stay cheap in the Function App).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from lifecycle.core import canary_stats as stats


class Outcome(StrEnum):
    """A check's or the judgement's outcome, stored as its value."""
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    SKIPPED = "skipped"             # a check with nothing to look at (no labels): never decides


OUTCOMES = (Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE)
CLASSIFICATION, REGRESSION = "classification", "regression"
# metrics.json has said "binary" or "multiclass" for classifiers
TASKS = {"classification": CLASSIFICATION, "binary": CLASSIFICATION, "multiclass": CLASSIFICATION,
         "regression": REGRESSION}


@dataclass(frozen=True)
class Window:
    """What one deployment did over the window."""
    deployment: str
    requests: int                         # answered requests (any status)
    server_errors: int                    # 5xx answers; 4xx are the caller's fault and don't count
    latencies_ms: tuple[float, ...]       # per-request latency samples (may be a subsample of `requests`)
    predictions: tuple = ()               # predicted labels of the collected outputs (may be empty)
    labelled: tuple[tuple[Any, Any], ...] = ()   # (prediction, true label) pairs where ground truth exists

    def __post_init__(self) -> None:
        if self.requests < 0 or not 0 <= self.server_errors <= self.requests:
            raise ValueError(f"window of deployment '{self.deployment}': {self.server_errors} server errors "
                             f"in {self.requests} requests is impossible; counts must satisfy "
                             "0 ≤ server_errors ≤ requests")
        # Lists are accepted and frozen; latencies that are not finite numbers (NaN from a lost sample) are dropped.
        latencies = tuple(x for x in map(float, self.latencies_ms) if math.isfinite(x))
        object.__setattr__(self, "latencies_ms", latencies)
        object.__setattr__(self, "predictions", tuple(self.predictions))
        object.__setattr__(self, "labelled", tuple(tuple(pair) for pair in self.labelled))


@dataclass(frozen=True)
class JudgePolicy:
    min_requests: int = 50                # per side, before anything but an outright failure can be decided
    alpha: float = 0.01                   # significance for the tests
    max_error_rate_increase: float = 0.02 # absolute: canary error rate may exceed baseline's by at most this...
    max_error_rate: float = 0.05          # ...and may never exceed this (with enough samples, significant)
    latency_ratio_p50: float = 1.5       # canary p50 ≤ ratio × baseline p50 + slack (with a tail limit broken too)
    latency_ratio_p95: float = 1.5        # canary p95 ≤ ratio × baseline p95 + slack
    latency_ratio_p99: float = 2.0
    latency_slack_ms: float = 5.0         # so that tiny absolute differences (1 ms vs 2 ms) don't fail
    max_prediction_shift: float = 0.2     # Jensen-Shannon distance (base 2) between predicted-label distributions
    # The shift is re-tested on every tick of a step, and two models' predictions differ by some amount
    # anyway: at `alpha` one chance look in a few dozen failed good models. A shift fails at this level.
    prediction_alpha: float = 0.001
    min_predictions: int = 50
    max_accuracy_drop: float = 0.05       # absolute, where ≥ min_labelled labels exist on both sides
    min_labelled: int = 30
    task: str = CLASSIFICATION            # the model's: "classification" or "regression" (metrics.json "task")
    # regression: normalized Wasserstein distance (in baseline standard deviations) between predicted values...
    max_prediction_wasserstein: float = 0.2
    max_error_increase: float = 0.1       # ...and the canary's mean absolute error at most 10% above the baseline's

    def __post_init__(self) -> None:
        task = TASKS.get(str(self.task).lower())
        if task is None:
            raise ValueError(f"judge policy: task {self.task!r} is not one of classification, regression (or "
                             "binary, multiclass): pass the model's metrics.json task")
        object.__setattr__(self, "task", task)
        if not (0.0 < self.alpha < 1.0 and 0.0 < self.prediction_alpha < 1.0):
            raise ValueError(f"judge policy: alpha and prediction_alpha must be between 0 and 1, not {self.alpha} "
                             f"and {self.prediction_alpha}")
        if min(self.min_requests, self.min_predictions, self.min_labelled) < 1:
            raise ValueError("judge policy: min_requests, min_predictions and min_labelled must be at least 1")


@dataclass(frozen=True)
class Check:
    name: str                   # "errors" | "latency" | "predictions" | "accuracy"
    outcome: Outcome
    detail: str                 # one sentence a person can read: numbers, test, p-value, limit
    evidence: dict              # the numbers (JSON-serialisable)

    def to_json(self) -> dict:
        return {"name": self.name, "outcome": str(self.outcome), "detail": self.detail, "evidence": self.evidence}


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome             # never SKIPPED
    checks: tuple[Check, ...]
    summary: str

    def to_json(self) -> dict:
        return {"outcome": str(self.outcome), "summary": self.summary, "checks": [c.to_json() for c in self.checks]}

    @classmethod
    def from_json(cls, data: dict) -> Judgement:
        return cls(Outcome(data["outcome"]), tuple(Check(c["name"], Outcome(c["outcome"]), c["detail"], c["evidence"])
                                          for c in data["checks"]), data["summary"])

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)


def judge(baseline: Window, canary: Window, policy: JudgePolicy = JudgePolicy()) -> Judgement:
    """Compare the canary with the baseline over the same window: pass, fail or inconclusive (wait)."""
    accuracy = accuracy_check(baseline, canary, policy)
    predictions = predictions_check(baseline, canary, policy)
    if predictions.outcome == Outcome.FAIL and accuracy.outcome == Outcome.PASS:
        predictions = replace(predictions, outcome=Outcome.PASS, detail=predictions.detail + " Not decisive: on ground "
                              "truth the canary is no less accurate, so its predictions changed for the better.")
    elif predictions.outcome == Outcome.FAIL and accuracy.outcome == Outcome.SKIPPED and (baseline.labelled
                                                                                         or canary.labelled):
        # labels flow for this endpoint, though too few yet to judge: a model retrained after drift should predict
        # differently, and only the ground truth tells better from worse (a step that waits too long rolls back)
        predictions = replace(predictions, outcome=Outcome.INCONCLUSIVE, detail=predictions.detail + " Ground truth is "
                              f"arriving: waiting for {policy.min_labelled} labelled canary predictions to judge it.")
    checks = (errors_check(baseline, canary, policy), latency_check(baseline, canary, policy), predictions, accuracy)
    failed = [c for c in checks if c.outcome == Outcome.FAIL]
    if failed:
        return Judgement(Outcome.FAIL, checks, f"fail: {canary.deployment} is worse than {baseline.deployment}. "
                         + " ".join(c.detail for c in failed))
    short = [(w, policy.min_requests - w.requests) for w in (canary, baseline) if w.requests < policy.min_requests]
    if short:
        waiting = " and ".join(f"{missing} more request{'s' if missing != 1 else ''} on {w.deployment} "
                               f"({w.requests} of {policy.min_requests})" for w, missing in short)
        return Judgement(Outcome.INCONCLUSIVE, checks,
                         f"inconclusive: waiting for {waiting}; no check has failed so far.")
    pending = [c for c in checks if c.outcome == Outcome.INCONCLUSIVE]
    if pending:
        return Judgement(Outcome.INCONCLUSIVE, checks, "inconclusive: waiting for more data. "
                         + " ".join(c.detail for c in pending))
    done = [c for c in checks if c.outcome == Outcome.PASS]
    skipped = [c for c in checks if c.outcome == Outcome.SKIPPED]
    summary = (f"pass: {canary.deployment} is no worse than {baseline.deployment} over {canary.requests} and "
               f"{baseline.requests} requests ({', '.join(c.name for c in done)} passed"
               + (f"; {', '.join(c.name for c in skipped)} skipped" if skipped else "") + "). "
               + " ".join(c.detail for c in done))
    return Judgement(Outcome.PASS, checks, summary)


# ------------------------------------------------------------------------------------------- errors

def errors_check(baseline: Window, canary: Window, policy: JudgePolicy) -> Check:
    b_n, b_e, c_n, c_e = baseline.requests, baseline.server_errors, canary.requests, canary.server_errors
    b_rate, c_rate = _rate(b_e, b_n), _rate(c_e, c_n)
    evidence: dict[str, Any] = {
        "baseline": {"deployment": baseline.deployment, "requests": b_n, "server_errors": b_e, "rate": b_rate},
        "canary": {"deployment": canary.deployment, "requests": c_n, "server_errors": c_e, "rate": c_rate},
        "alpha": policy.alpha, "max_error_rate_increase": policy.max_error_rate_increase,
        "max_error_rate": policy.max_error_rate, "min_requests": policy.min_requests,
        "test": None, "statistic": None, "p_value": None,
        "limit_test": "exact binomial test (one-sided) against max_error_rate", "p_value_limit": None}
    if c_n == 0:
        return Check("errors", Outcome.INCONCLUSIVE, f"Errors: no requests answered by {canary.deployment} yet.",
                     evidence)

    seen = f"{canary.deployment}: {c_e} server errors in {c_n} requests ({_pct(c_rate)})"
    c_share = c_e / c_n                      # c_rate, now that there are requests
    b_share = b_e / b_n if b_n else 0.0      # b_rate where there are requests (read only then)
    relative: stats.TestResult | None = None
    if b_n:
        seen += f" vs {baseline.deployment}: {b_e} in {b_n} ({_pct(b_rate)})"
        relative = stats.two_proportion_greater(c_e, c_n, b_e, b_n)
        evidence.update(test=relative.test + " (one-sided, canary worse)", statistic=relative.statistic,
                        p_value=relative.p_value, difference=c_share - b_share)
    p_limit = stats.binom_greater(c_e, c_n, policy.max_error_rate)
    evidence["p_value_limit"] = p_limit

    # relative is there exactly when the baseline answered requests (b_n > 0)
    over_increase = relative is not None and c_share > b_share + policy.max_error_rate_increase
    over_ceiling = c_share > policy.max_error_rate
    fails = []
    if relative is not None and over_increase and relative.p_value < policy.alpha:
        fails.append(f"{_pct(c_share - b_share)} more than {baseline.deployment}, above the allowed "
                     f"+{_pct(policy.max_error_rate_increase)} ({relative.test}, "
                     f"{_p(relative.p_value)} < {policy.alpha})")
    if over_ceiling and p_limit < policy.alpha:
        fails.append(f"significantly above the {_pct(policy.max_error_rate)} ceiling "
                     f"(binomial {_p(p_limit)} < {policy.alpha})")
    if fails:
        return Check("errors", Outcome.FAIL, f"Errors: {seen}; " + " and ".join(fails) + ".", evidence)
    if b_n < policy.min_requests or c_n < policy.min_requests:
        return Check("errors", Outcome.INCONCLUSIVE, f"Errors: {seen}; need {policy.min_requests} requests on each "
                     "side to pass.", evidence)
    if over_increase or over_ceiling:
        limit = (f"above {baseline.deployment} + {_pct(policy.max_error_rate_increase)}" if over_increase
                 else f"above the {_pct(policy.max_error_rate)} ceiling")
        p = relative.p_value if relative is not None and over_increase else p_limit
        return Check("errors", Outcome.INCONCLUSIVE, f"Errors: {seen}; {limit} but not significant yet "
                     f"({_p(p)} ≥ {policy.alpha}), waiting for more requests.", evidence)
    return Check("errors", Outcome.PASS, f"Errors: {seen}; within +{_pct(policy.max_error_rate_increase)} of "
                 f"{baseline.deployment} and under {_pct(policy.max_error_rate)}.", evidence)


# ------------------------------------------------------------------------------------------ latency

def latency_check(baseline: Window, canary: Window, policy: JudgePolicy) -> Check:
    b, c = sorted(baseline.latencies_ms), sorted(canary.latencies_ms)
    evidence: dict[str, Any] = {
        "baseline": _latency_summary(baseline.deployment, b), "canary": _latency_summary(canary.deployment, c),
        "alpha": policy.alpha, "latency_ratio_p95": policy.latency_ratio_p95,
        "latency_ratio_p99": policy.latency_ratio_p99, "latency_slack_ms": policy.latency_slack_ms,
        "min_samples": policy.min_requests}
    missing = [w.deployment for w, s in ((canary, c), (baseline, b)) if not s]
    if missing:
        return Check("latency", Outcome.INCONCLUSIVE, f"Latency: no samples from {' or '.join(missing)} yet.", evidence)

    result, method = stats.mann_whitney_greater(c, b)
    assert result.statistic is not None      # Mann-Whitney always has its U
    limits = {"p50": policy.latency_ratio_p50 * evidence["baseline"]["p50"] + policy.latency_slack_ms,
              "p95": policy.latency_ratio_p95 * evidence["baseline"]["p95"] + policy.latency_slack_ms,
              "p99": policy.latency_ratio_p99 * evidence["baseline"]["p99"] + policy.latency_slack_ms}
    # Tails alone are noisy (a busy machine, a worker warming up): failing takes a shifted median too.
    breaches = [q for q, limit in limits.items() if evidence["canary"][q] > limit]
    tail_breaches = [q for q in breaches if q != "p50"]
    significant = result.p_value < policy.alpha
    evidence.update(test="Mann-Whitney U (one-sided, canary slower)", method=method, u_statistic=result.statistic,
                    p_value=result.p_value, prob_canary_slower=result.statistic / (len(b) * len(c)),
                    limit_p95_ms=limits["p95"], limit_p99_ms=limits["p99"], breaches=breaches)

    def three(side: str) -> str:
        return ", ".join(f"{q} {_ms(evidence[side][q])}" for q in ("p50", "p95", "p99"))
    quantiles = f"{canary.deployment} {three('canary')} vs {baseline.deployment} {three('baseline')}"
    test = f"Mann-Whitney {_p(result.p_value)}"
    broken = ", ".join(f"{q} above its limit {_ms(limits[q])}" for q in breaches)
    # Unlike errors, latency never fails early: a deployment's first requests are often slow (workers
    # warming up), and tail quantiles of a handful of samples say little.
    if len(b) < policy.min_requests or len(c) < policy.min_requests:
        return Check("latency", Outcome.INCONCLUSIVE, f"Latency: {quantiles} ({test}); need {policy.min_requests} "
                     f"samples on each side (have {len(c)} and {len(b)}).", evidence)
    if significant and "p50" in breaches and tail_breaches:
        return Check("latency", Outcome.FAIL, f"Latency: {quantiles}; significantly slower ({test} < {policy.alpha}) "
                     f"with {broken}.", evidence)
    if breaches:
        return Check("latency", Outcome.INCONCLUSIVE, f"Latency: {quantiles}; {broken} but not significantly slower "
                     f"({test} ≥ {policy.alpha}), waiting for more samples.", evidence)
    verdict = "slower but within limits" if significant else "not significantly slower"
    return Check("latency", Outcome.PASS, f"Latency: {quantiles}; {verdict} ({test}; limits p95 "
                 f"{_ms(limits['p95'])}, p99 {_ms(limits['p99'])}).", evidence)


def _latency_summary(deployment: str, ordered: list[float]) -> dict:
    if not ordered:
        return {"deployment": deployment, "samples": 0, "mean": None, "p50": None, "p95": None, "p99": None}
    return {"deployment": deployment, "samples": len(ordered), "mean": sum(ordered) / len(ordered),
            "p50": stats.quantile(ordered, 0.5), "p95": stats.quantile(ordered, 0.95),
            "p99": stats.quantile(ordered, 0.99)}


# -------------------------------------------------------------------------------------- predictions

def predictions_check(baseline: Window, canary: Window, policy: JudgePolicy) -> Check:
    b, c = baseline.predictions, canary.predictions
    evidence: dict[str, Any] = {"max_prediction_shift": policy.max_prediction_shift, "alpha": policy.prediction_alpha,
                                "min_predictions": policy.min_predictions,
                                "baseline": {"deployment": baseline.deployment, "count": len(b)},
                                "canary": {"deployment": canary.deployment, "count": len(c)}}
    if not b and not c:      # nothing collected at all: this check cannot apply
        return Check("predictions", Outcome.SKIPPED, "Predictions: none collected from either deployment.", evidence)
    if len(b) < policy.min_predictions or len(c) < policy.min_predictions:
        # Predictions are being collected: wait for enough rather than pass without looking.
        return Check("predictions", Outcome.INCONCLUSIVE,
                     f"Predictions: {len(c)} from {canary.deployment} and {len(b)} from {baseline.deployment}; "
                     f"need {policy.min_predictions} on each side.", evidence)

    if policy.task == REGRESSION or stats.is_continuous(b, c):
        return _continuous_predictions(baseline, canary, policy, evidence)
    b_counts, c_counts = _counts(b), _counts(c)
    distance = stats.js_distance(c_counts, b_counts)
    chi2 = stats.chi2_homogeneity(c_counts, b_counts)
    evidence.update(method="labels", labels=len(set(b_counts) | set(c_counts)), js_distance=distance,
                    chi2={"statistic": chi2.statistic, "dof": len(set(b_counts) | set(c_counts)) - 1,
                          "p_value": chi2.p_value})
    evidence["baseline"]["distribution"] = _shares(b_counts, c_counts)
    evidence["canary"]["distribution"] = _shares(c_counts, b_counts)

    seen = (f"prediction distributions of {canary.deployment} ({len(c)}) and "
            f"{baseline.deployment} ({len(b)}) are {distance:.3f} apart (Jensen-Shannon distance, limit "
            f"{policy.max_prediction_shift}; chi-squared {_p(chi2.p_value)})")
    if distance <= policy.max_prediction_shift:
        return Check("predictions", Outcome.PASS, f"Predictions: {seen}.", evidence)
    if chi2.p_value < policy.prediction_alpha:
        return Check("predictions", Outcome.FAIL, f"Predictions: {seen}; {canary.deployment} "
                     f"predicts {_top(c_counts)} where {baseline.deployment} predicts {_top(b_counts)}.", evidence)
    return Check("predictions", Outcome.INCONCLUSIVE, f"Predictions: {seen}; the shift is not significant yet, "
                 "waiting for more predictions.", evidence)


def _continuous_predictions(baseline: Window, canary: Window, policy: JudgePolicy, evidence: dict) -> Check:
    """A regressor's predicted values: how far apart the two distributions are, in standard deviations of the
    baseline's (normalized Wasserstein, as Azure ML's model monitor measures numeric drift), and whether the
    difference is real (two-sample Kolmogorov-Smirnov)."""
    b, c = _numbers(baseline.predictions), _numbers(canary.predictions)
    evidence.update(method="values", task=policy.task, max_prediction_wasserstein=policy.max_prediction_wasserstein)
    evidence["baseline"].update(not_numbers=len(baseline.predictions) - len(b))
    evidence["canary"].update(not_numbers=len(canary.predictions) - len(c))
    note = ("" if policy.task == REGRESSION else " (the policy says classification, but the predictions are "
            "fractional numbers: compared as values; pass the model's task)")
    # a regressor answering null or text is broken, as a server error is (same margin over the baseline)
    bad = evidence["canary"]["not_numbers"]
    c_share, b_share = _share(canary.predictions, len(c)), _share(baseline.predictions, len(b))
    if len(canary.predictions) >= policy.min_predictions and c_share > b_share + policy.max_error_rate_increase:
        return Check("predictions", Outcome.FAIL, f"Predictions: {bad} of the {len(canary.predictions)} predictions "
                     f"of {canary.deployment} are not numbers ({_pct(c_share)}, against {_pct(b_share)} from "
                     f"{baseline.deployment}).", evidence)
    if len(b) < policy.min_predictions or len(c) < policy.min_predictions:
        return Check("predictions", Outcome.INCONCLUSIVE,
                     f"Predictions: {len(c)} numeric predictions from {canary.deployment} and {len(b)} from "
                     f"{baseline.deployment}; need {policy.min_predictions} on each side.", evidence)
    ks = stats.ks_2samp(c, b)
    distance = stats.wasserstein(c, b)
    (b_mean, b_std), (c_mean, c_std) = stats.mean_std(b), stats.mean_std(c)
    scale = b_std or (max(b) - min(b)) or 1.0        # a constant baseline: its range, then the raw distance
    shift = distance / scale
    evidence.update(wasserstein=distance, scale=scale, normalized_wasserstein=shift,
                    ks={"statistic": ks.statistic, "p_value": ks.p_value})
    for side, values, mean, std in (("baseline", b, b_mean, b_std), ("canary", c, c_mean, c_std)):
        ordered = sorted(values)
        evidence[side].update(mean=mean, std=std, p05=stats.quantile(ordered, 0.05),
                              p50=stats.quantile(ordered, 0.5), p95=stats.quantile(ordered, 0.95))
    seen = (f"predicted values of {canary.deployment} (mean {_num(c_mean)}, median {_num(evidence['canary']['p50'])}, "
            f"{len(c)}) and {baseline.deployment} (mean {_num(b_mean)}, median {_num(evidence['baseline']['p50'])}, "
            f"{len(b)}) are {shift:.3f} of {baseline.deployment}'s standard deviation apart (normalized Wasserstein "
            f"distance, limit {policy.max_prediction_wasserstein}; Kolmogorov-Smirnov D={ks.statistic:.3f}, "
            f"{_p(ks.p_value)}){note}")
    if shift <= policy.max_prediction_wasserstein:
        return Check("predictions", Outcome.PASS, f"Predictions: {seen}.", evidence)
    if ks.p_value < policy.prediction_alpha:
        direction = "higher" if c_mean > b_mean else "lower"
        return Check("predictions", Outcome.FAIL, f"Predictions: {seen}; {canary.deployment} predicts "
                     f"{direction} values than {baseline.deployment} by {_num(abs(c_mean - b_mean))} on average.",
                     evidence)
    return Check("predictions", Outcome.INCONCLUSIVE, f"Predictions: {seen}; the shift is not significant yet, "
                 "waiting for more predictions.", evidence)


def _counts(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        key = stats.label_key(value)
        counts[key] = counts.get(key, 0) + 1
    return counts


def _shares(counts: dict, other: dict, limit: int = 20) -> dict[str, float]:
    """Shares of the `limit` labels most common on both sides together; the rest as "(other)"."""
    total = sum(counts.values())
    top = sorted(set(counts) | set(other), key=lambda k: (-(counts.get(k, 0) + other.get(k, 0)), k))[:limit]
    shares = {k: counts.get(k, 0) / total for k in top}
    rest = total - sum(counts.get(k, 0) for k in top)
    if rest:
        shares["(other)"] = rest / total
    return shares


def _top(counts: dict, n: int = 3) -> str:
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return ", ".join(f"{label!r} {count / total:.0%}" for label, count in ranked)


# ----------------------------------------------------------------------------------------- accuracy

def accuracy_check(baseline: Window, canary: Window, policy: JudgePolicy) -> Check:
    b, c = baseline.labelled, canary.labelled
    evidence: dict[str, Any] = {"max_accuracy_drop": policy.max_accuracy_drop, "alpha": policy.alpha,
                                "min_labelled": policy.min_labelled,
                                "baseline": {"deployment": baseline.deployment, "labelled": len(b)},
                                "canary": {"deployment": canary.deployment, "labelled": len(c)}}
    if len(b) < policy.min_labelled or len(c) < policy.min_labelled:
        return Check("accuracy", Outcome.SKIPPED,
                     f"Accuracy: {len(c)} labelled predictions from {canary.deployment} and {len(b)} from "
                     f"{baseline.deployment}; need {policy.min_labelled} on each side.", evidence)
    if policy.task == REGRESSION:
        return _error_check(baseline, canary, policy, evidence)
    if stats.is_continuous([t for _, t in b], [t for _, t in c]):
        return Check("accuracy", Outcome.SKIPPED, "Accuracy: the true labels are continuous values (a regressor); "
                     "accuracy does not apply (pass the model's task to compare errors).", evidence)

    b_ok = sum(stats.label_key(p) == stats.label_key(t) for p, t in b)
    c_ok = sum(stats.label_key(p) == stats.label_key(t) for p, t in c)
    b_acc, c_acc = b_ok / len(b), c_ok / len(c)
    result = stats.two_proportion_greater(len(c) - c_ok, len(c), len(b) - b_ok, len(b))   # canary wrong more often?
    drop = b_acc - c_acc
    evidence["baseline"].update(correct=b_ok, accuracy=b_acc)
    evidence["canary"].update(correct=c_ok, accuracy=c_acc)
    evidence.update(drop=drop, test=result.test + " (one-sided, canary less accurate)",
                    statistic=result.statistic, p_value=result.p_value)
    seen = (f"{canary.deployment} {_pct(c_acc)} correct of {len(c)} vs {baseline.deployment} {_pct(b_acc)} of "
            f"{len(b)}, {_accuracy_change(drop)} (limit a drop of {_pct(policy.max_accuracy_drop)}; {result.test} "
            f"{_p(result.p_value)})")
    if drop > policy.max_accuracy_drop and result.p_value < policy.alpha:
        return Check("accuracy", Outcome.FAIL, f"Accuracy: {seen}.", evidence)
    if drop > policy.max_accuracy_drop:
        return Check("accuracy", Outcome.INCONCLUSIVE, f"Accuracy: {seen}; not significant yet, waiting for more "
                     "labels.", evidence)
    return Check("accuracy", Outcome.PASS, f"Accuracy: {seen}.", evidence)


def _accuracy_change(drop: float) -> str:
    """A negative drop is a gain: said as one, not as "a drop of -3.0%"."""
    return f"a drop of {_pct(drop)}" if drop >= 0 else f"{_pct(-drop)} more accurate"


def _error_check(baseline: Window, canary: Window, policy: JudgePolicy, evidence: dict) -> Check:
    """A regressor's labelled predictions: is the canary's mean absolute error more than `max_error_increase`
    above the baseline's, significantly (one-sided Welch test on the absolute errors)?"""
    b, c = _numeric_pairs(baseline.labelled), _numeric_pairs(canary.labelled)
    evidence.update(metric="mean absolute error", max_error_increase=policy.max_error_increase)
    evidence["baseline"].update(numeric=len(b))
    evidence["canary"].update(numeric=len(c))
    if len(b) < policy.min_labelled or len(c) < policy.min_labelled:
        return Check("accuracy", Outcome.SKIPPED,
                     f"Prediction error: {len(c)} labelled predictions from {canary.deployment} and {len(b)} from "
                     f"{baseline.deployment} are numbers on both sides; need {policy.min_labelled} on each side.",
                     evidence)
    b_err, c_err = [abs(p - t) for p, t in b], [abs(p - t) for p, t in c]
    for side, pairs, errors in (("baseline", b, b_err), ("canary", c, c_err)):
        evidence[side].update(mae=math.fsum(errors) / len(errors),
                              rmse=math.sqrt(math.fsum(e * e for e in errors) / len(errors)),
                              # true minus predicted, as monitoring's residuals: negative predicts too high
                              mean_residual=math.fsum(t - p for p, t in pairs) / len(pairs))
    b_mae, c_mae = evidence["baseline"]["mae"], evidence["canary"]["mae"]
    increase = c_mae - b_mae
    # relative to the baseline's error: a perfect baseline makes any error of the canary an infinite rise
    relative = increase / b_mae if b_mae > 0 else (math.inf if increase > 0 else 0.0)
    result = stats.welch_greater(c_err, b_err)
    evidence.update(increase=increase, relative_increase=relative if math.isfinite(relative) else None,
                    test=result.test + " (one-sided, canary's errors larger)", statistic=result.statistic,
                    p_value=result.p_value)
    change = (f"{abs(relative):.1%} {'higher' if increase > 0 else 'lower'}" if math.isfinite(relative)
              else "where the baseline's is 0")
    seen = (f"mean absolute error of {canary.deployment} {_num(c_mae)} over {len(c)} labelled predictions vs "
            f"{baseline.deployment} {_num(b_mae)} over {len(b)}, {change} (limit +{policy.max_error_increase:.0%}; "
            f"{result.test} {_p(result.p_value)})")
    if relative > policy.max_error_increase and result.p_value < policy.alpha:
        return Check("accuracy", Outcome.FAIL, f"Prediction error: {seen}.", evidence)
    if relative > policy.max_error_increase:
        return Check("accuracy", Outcome.INCONCLUSIVE, f"Prediction error: {seen}; not significant yet, waiting for "
                     "more labels.", evidence)
    return Check("accuracy", Outcome.PASS, f"Prediction error: {seen}.", evidence)


# ------------------------------------------------------------------------------------------ helpers

def _numbers(values) -> list[float]:
    """The values that are finite real numbers (not bools, text parsed), as floats."""
    return [x for x in map(_number, values) if x is not None]


def _numeric_pairs(pairs) -> list[tuple[float, float]]:
    """(prediction, true value) pairs where both are numbers; labels often come as text ("151.0")."""
    numbers = ((_number(prediction), _number(truth)) for prediction, truth in pairs)
    return [(p, t) for p, t in numbers if p is not None and t is not None]


def _share(values: tuple, numbers: int) -> float:
    """The share of values that are not numbers."""
    return (len(values) - numbers) / len(values) if values else 0.0


def _number(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    found = stats.numeric_values([value])
    return found[0] if found else None


def _num(x: float) -> str:
    return f"{x:.4g}"


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


def _p(p: float | None) -> str:
    """A p-value as "p=0.012", "p=3.4e-07" or "p<1e-300" (smaller than a float holds)."""
    if p is None:
        return "p n/a"
    return f"p={p:.3f}" if p >= 0.001 else f"p={p:.1e}" if p > 0 else "p<1e-300"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else (f"{x:.0f} ms" if x >= 100 else f"{x:.2f} ms" if x < 10 else f"{x:.1f} ms")
