"""What a simulation yields: per policy, the task's metric day by day on the labels as they arrive, the
lifecycle's decisions as markers in simulated time, and the counts a team weighs (trainings, rollouts, alarms,
compute); over all policies, the history's known drifts and a recommendation."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DriftPoint:
    """A change the history is known to hold (generated histories only): from `day` (0-based, since the start of
    the measured days) to `ends` (exclusive; ends == day + 1 for a sudden change)."""
    day: int
    ends: int
    kind: str                        # sudden | gradual | seasonal
    what: str = ""                   # e.g. "concept: SEA threshold 8 → 9.5"


@dataclass(frozen=True)
class DailyScore:
    """The live traffic of one simulated day, scored on its ground truth: the metric of what production answered
    (whichever deployment answered each request)."""
    day: int
    date: str                        # ISO date
    metric: float | None             # None: no labelled request that day
    labelled: int


@dataclass(frozen=True)
class Marker:
    """One decision of the lifecycle, at its simulated time in days since the start (fractional)."""
    day: float
    kind: str                        # trained | registered | rejected | promoted | rolled_back | alert
    detail: str = ""


@dataclass(frozen=True)
class Recovery:
    """How the metric came back after a known drift: `days` from the drift's start to the first day whose
    3-day mean is back within the tolerance of the level before it; None if it never did before the next drift."""
    drift_day: int
    recovered_day: int | None
    days: int | None
    before: float | None             # the level before the drift
    lowest: float | None             # the worst 3-day mean after it


@dataclass(frozen=True)
class Alarms:
    """Alerts against the known drifts: an alert within `window_days` after a drift's start (or during a gradual
    one) detects it; other alerts are false; a drift no alert detected is missed."""
    detected: int = 0
    missed: int = 0
    false: int = 0
    window_days: int = 14


@dataclass(frozen=True)
class PolicyRun:
    """What the engine measured for one policy (before scoring against the history's drifts)."""
    name: str
    description: str
    settings: dict[str, str]         # the app settings this policy sets (RETRAIN_ON, RETRAIN_SCHEDULE, ...)
    daily: tuple[DailyScore, ...]
    markers: tuple[Marker, ...]
    trainings: int                   # training jobs started
    failed_trainings: int
    registered: int
    rejected: int
    promoted: int
    rolled_back: int
    alerts: int                      # alerts that fired (drift or performance)
    monitoring_jobs: int
    training_seconds: float          # measured here: the training jobs' compute, the cost proxy
    monitoring_seconds: float
    wall_seconds: float              # how long this policy's simulation took
    undelivered: tuple[str, ...] = ()  # events a handler still failed on after Event Grid's retries


@dataclass(frozen=True)
class PolicyOutcome:
    """A policy's run scored against the history."""
    run: PolicyRun
    mean_metric: float | None        # over the measured days with labels
    final_metric: float | None       # the mean of the last 7 days with labels
    recoveries: tuple[Recovery, ...] = ()
    alarms: Alarms | None = None     # None: the history's drifts are not known (a folder of data)


@dataclass(frozen=True)
class Recommendation:
    policy: str
    reason: str


@dataclass(frozen=True)
class SimulationResult:
    history: str                     # what was replayed, in words
    task: str                        # classification | regression
    metric: str                      # accuracy | r2
    start: str                       # ISO date of the first measured day
    days: int
    seed: int
    drifts: tuple[DriftPoint, ...]
    outcomes: tuple[PolicyOutcome, ...]
    recommendation: Recommendation | None
    warmup_days: int = 0             # days the first model trained on, before the measured days
    notes: tuple[str, ...] = field(default_factory=tuple)
