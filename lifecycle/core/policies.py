"""The lifecycle's policies: small typed values the core decides with, built once from app settings by the
composition root (lifecycle/bootstrap.py) and checked when built, so that a wrong value stops the app at
start with the setting's name instead of failing a step hours later.

Infrastructure (connections, account and workspace names) stays in lifecycle/settings.py; only what a
person tunes to decide when to retrain, what to register and how to roll out lives here."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from lifecycle.core.vm_sizes import VM_SIZES, VmSize

NewModelRule = Literal["wait", "supersede"]
Stage = Literal["", "dev", "preprod", "prod"]
MAX_MIRROR_PERCENT = 50          # Azure ML's limit on mirrored traffic
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")


class PolicyError(ValueError):
    """A policy value out of range. `field` names the policy field, so the caller can name its setting."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name


Task = Literal["classification", "regression"]
TASKS = ("classification", "regression")
WINDOW = re.compile(r"^\s*(?:(all)|(\d+)\s*(d|day|days|drop|drops))\s*$", re.IGNORECASE)


def check_schedule(schedule: str) -> None:
    """A model's own schedule: six-field NCRONTAB, as the Functions timer takes it."""
    if not schedule:
        return
    from croniter import croniter  # only when a model has its own schedule: cold start stays light
    if len(schedule.split()) != 6 or not croniter.is_valid(schedule, second_at_beginning=True):
        raise PolicyError("schedule", "must be six NCRONTAB fields, seconds first, e.g. '0 0 3 * * *' (every day "
                          "at 03:00)")


@dataclass(frozen=True)
class TrainingWindow:
    """What a training run reads of the model's dataset root: all of it, the data that landed over the
    last N days, the last N drops (folders), or every file's rows whose date `column` lies within the last
    N days of the data (kind "column": a row filter the training job applies)."""
    kind: Literal["all", "days", "drops", "column"] = "all"
    size: int = 0
    column: str = ""

    @classmethod
    def of_column(cls, column: str, days: int) -> TrainingWindow:
        if not column or days < 1:
            raise PolicyError("training_window", f"is {{column: {column!r}, days: {days}}}: name the date column "
                              "and at least 1 day, e.g. {column: sold_on, days: 90}")
        return cls("column", days, column)

    @classmethod
    def parse(cls, text: str) -> TrainingWindow:
        match = WINDOW.match(str(text))
        if not match:
            raise PolicyError("training_window", f"is {text!r}: use 'all', '<N> days' or '<N> drops', e.g. '30 days'")
        if match[1]:
            return cls()
        size = int(match[2])
        if size < 1:
            raise PolicyError("training_window", f"is {text!r}: a window holds at least 1 day or drop")
        return cls("drops" if match[3].lower().startswith("dr") else "days", size)

    def __str__(self) -> str:
        if self.kind == "column":
            return f"rows of the last {self.size} day(s) of {self.column}"
        return "all" if self.kind == "all" else f"{self.size} {self.kind if self.size > 1 else self.kind[:-1]}"


@dataclass(frozen=True)
class ManagedModel:
    """A model this app keeps alive: its name in the registry, its task and label, its endpoint, where its
    training data (a dataset root in the data container) and its ground-truth labels land, and how it is
    trained (our train.py, or the team's own command or pipeline job spec)."""
    name: str = "tabular-classifier"
    target_column: str = ""          # "" = not set: nothing can train
    endpoint: str = "mlops-endpoint"
    data_container: str = "data"
    feedback_container: str = "feedback"
    task: Task = "classification"
    data_root: str = ""              # a prefix in the data container ("" = all of it); files under it are its data
    training_window: TrainingWindow = TrainingWindow()
    training_spec: str = ""          # the team's job YAML relative to the app's root ("" = training/job.yml)
    training_inputs: Mapping[str, str] = field(default_factory=dict)   # the job's inputs (hyperparameters)

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise PolicyError("name", f"is {self.name!r}: letters, digits, '-' and '_', starting with a letter or "
                              "digit (Azure ML's rule for model names), at most 255 characters")
        if self.task not in TASKS:
            raise PolicyError("task", f"is {self.task!r}: use 'classification' (binary or multiclass) or "
                              "'regression'")
        if self.data_root and not self.data_root.endswith("/"):
            raise PolicyError("data_root", f"is {self.data_root!r}: a folder, ending in '/' (e.g. 'sales/')")

    def holds(self, container: str, blob_path: str) -> bool:
        """Whether a blob is this model's data: in its container, under its dataset root."""
        return container == self.data_container and blob_path.startswith(self.data_root)


# What may start training on its own (RETRAIN_ON): a complete drop as soon as it is ready; the retrain timer's
# turn, on the drops that are ready; a drift alert; a performance alert. "never" = none of them: data is still
# recorded, and only a person's forced retrain trains.
DATA, SCHEDULE, DRIFT, PERFORMANCE = "data", "schedule", "drift", "performance"
TRIGGERS = (DATA, SCHEDULE, DRIFT, PERFORMANCE)
NEVER = "never"
TRIGGERS_RULE = (f"must be '{NEVER}' alone, or one or more of {', '.join(TRIGGERS)} separated by commas "
                 f"(e.g. 'drift,performance')")


def retrain_triggers(value: object) -> frozenset[str]:
    """RETRAIN_ON's words (text separated by commas or spaces, or a list) as the set of triggers: 'never' alone is
    the empty set. PolicyError ("triggers") for an unknown word, 'never' with others, or nothing at all."""
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise PolicyError("triggers", TRIGGERS_RULE)
    words = {str(i).strip().lower() for i in items if str(i).strip()}
    if not words or not words <= {*TRIGGERS, NEVER} or (NEVER in words and len(words) > 1):
        raise PolicyError("triggers", TRIGGERS_RULE)
    return frozenset(words - {NEVER})


@dataclass(frozen=True)
class RetrainPolicy:
    drop_quiet_seconds: float = 60   # a drop without a _SUCCESS marker is complete after this quiet time
    cooldown_minutes: float = 10     # at least this long between two training runs
    max_drop_attempts: int = 3       # a drop whose job the platform lost is offered again, this many times in all
    schedule: str = ""               # this model's turns of the retrain timer (NCRONTAB); "" = every tick
    triggers: frozenset[str] = frozenset(TRIGGERS)    # what starts training on its own (RETRAIN_ON); empty = never

    def __post_init__(self) -> None:
        check_schedule(self.schedule)
        if not isinstance(self.triggers, frozenset) or not self.triggers <= set(TRIGGERS):
            raise PolicyError("triggers", TRIGGERS_RULE)
        if self.drop_quiet_seconds < 0 or self.cooldown_minutes < 0:
            raise PolicyError("drop_quiet_seconds" if self.drop_quiet_seconds < 0 else "cooldown_minutes",
                              "must not be negative")
        if self.max_drop_attempts < 1:
            raise PolicyError("max_drop_attempts", "must be at least 1")

    @property
    def retrain_on(self) -> str:
        """The triggers as RETRAIN_ON spells them ('never' for none)."""
        return ",".join(t for t in TRIGGERS if t in self.triggers) or NEVER


@dataclass(frozen=True)
class GatePolicy:
    metric: str = "f1"
    floor: float = 0.6               # the challenger must reach this
    margin: float = 0.02             # and not be worse than the champion by more than this
    leak_score: float = 0.99         # a holdout score this high is checked for a leak...
    leak_feature_score: float = 0.95  # ...and held for a person if one feature alone reaches this

    def __post_init__(self) -> None:
        if not self.metric:
            raise PolicyError("metric", "must name a metric of the job's metrics.json, e.g. f1")
        if self.margin < 0:
            raise PolicyError("margin", "must not be negative")


@dataclass(frozen=True)
class RolloutPolicy:
    steps: tuple[int, ...] = (10, 50, 100)   # canary traffic percentages for the new colour
    bake_seconds: float = 300        # at least this long at each step...
    min_requests: int = 100          # ...and at least this many requests on each colour before judging
    mirror_percent: int = 0          # > 0: mirror this share of the live traffic to the new colour first
    mirror_seconds: float = 300
    max_step_seconds: float = 3600   # a step still inconclusive after this rolls back
    retention_seconds: float = 600   # the old colour is kept this long after promotion
    on_new_model: NewModelRule = "wait"      # a model registered during a rollout waits, or supersedes it
    smoke_rows: int = 20             # reference rows sent to the new colour before it takes traffic
    smoke_max_latency_ms: float = 2000

    def __post_init__(self) -> None:
        steps = self.steps
        if not steps or steps[-1] != 100 or any(b <= a for a, b in zip((0, *steps), steps, strict=False)):
            raise PolicyError("steps", "must be increasing percentages ending at 100, e.g. '10,50,100'")
        if not 0 <= self.mirror_percent <= MAX_MIRROR_PERCENT:
            raise PolicyError("mirror_percent", f"must be between 0 and {MAX_MIRROR_PERCENT} (Azure's limit)")
        if self.on_new_model not in ("wait", "supersede"):
            raise PolicyError("on_new_model", "must be 'wait' or 'supersede'")
        if self.min_requests < 1 or self.smoke_rows < 1:
            raise PolicyError("min_requests" if self.min_requests < 1 else "smoke_rows", "must be at least 1")


@dataclass(frozen=True)
class MonitorPolicy:
    window_minutes: float = 60       # look back this far at the live deployment's traffic
    min_rows: int = 500              # fewer collected rows than this: too few to judge drift
    min_labels: int = 100            # fewer labelled rows: no performance, concept drift or fairness
    drift_thresholds: Mapping[str, float] = field(default_factory=dict)   # overrides of Azure ML's defaults
    sensitive_column: str = ""       # a feature to check fairness on; "" = no fairness check
    alert_cooldown_minutes: float = 60   # after an alert started training, later alerts start nothing this long
    schedule: str = ""               # this model's turns of the monitor timer (NCRONTAB); "" = every tick

    def __post_init__(self) -> None:
        check_schedule(self.schedule)
        if self.window_minutes <= 0:
            raise PolicyError("window_minutes", "must be more than 0")
        if self.min_rows < 1 or self.min_labels < 1:
            raise PolicyError("min_rows" if self.min_rows < 1 else "min_labels", "must be at least 1")


@dataclass(frozen=True)
class PromotionPolicy:
    """The way to production: preprod shares each model that survived its canary into the registry, and
    production rolls out what it is told of, after a person's approval if one is required."""
    stage: Stage = ""
    registry: str = ""               # the Azure ML registry between the environments
    approval_required: bool = False  # production: a person approves before the rollout starts

    def __post_init__(self) -> None:
        if self.stage not in ("", "dev", "preprod", "prod"):
            raise PolicyError("stage", "must be dev, preprod or prod")
        if self.stage in ("preprod", "prod") and not self.registry:
            raise PolicyError("registry", "must name the Azure ML registry between the environments")

    @property
    def shares(self) -> bool:
        return self.stage == "preprod"

    @property
    def receives(self) -> bool:
        return self.stage == "prod"


@dataclass(frozen=True)
class ComputePolicy:
    """The cluster the jobs run on (as the infrastructure sets it) and what its node-hours cost."""
    cluster: str = "cpu-cluster"
    vm_size: str = "Standard_DS3_v2"
    min_nodes: int = 0
    max_nodes: int = 2
    idle_seconds: int = 120                     # idle time before scale-down
    rates: Mapping[str, float] = field(default_factory=dict)     # per node-hour, over the list prices
    currency: str = "USD"
    slowdown_factor: float = 2.0                # training this many times its usual length is slow

    def __post_init__(self) -> None:
        if self.min_nodes < 0 or self.max_nodes < max(1, self.min_nodes):
            raise PolicyError("max_nodes", "must be at least 1 and at least min_nodes")
        if self.idle_seconds < 0:
            raise PolicyError("idle_seconds", "must not be negative")
        if self.slowdown_factor <= 1:
            raise PolicyError("slowdown_factor", "must be more than 1, e.g. 2 for twice the usual time")
        if any(rate < 0 for rate in self.rates.values()):
            raise PolicyError("rates", "must not be negative")

    def rate(self, vm_size: str = "") -> float | None:
        size = vm_size or self.vm_size
        if size in self.rates:
            return self.rates[size]
        known = VM_SIZES.get(size)
        return known.rate if known else None

    @property
    def size(self) -> VmSize | None:
        return VM_SIZES.get(self.vm_size)


def parse_rates(text: str) -> dict[str, float]:
    """COMPUTE_RATES: 'Standard_DS3_v2=0.293,Standard_E4s_v3=0.252' (per node-hour, commas or spaces)."""
    rates: dict[str, float] = {}
    for item in text.replace(",", " ").split():
        size, _, value = item.partition("=")
        try:
            rates[size.strip()] = float(value)
        except ValueError:
            raise PolicyError("rates", f"has {item!r}, which is not SIZE=RATE, e.g. Standard_DS3_v2=0.293") from None
        if not size.strip() or rates[size.strip()] < 0:
            raise PolicyError("rates", f"has {item!r}, which is not SIZE=RATE with a rate of 0 or more")
    return rates


@dataclass(frozen=True)
class Policies:
    """Everything the lifecycle decides with, for one model this app keeps alive."""
    model: ManagedModel = ManagedModel()
    retrain: RetrainPolicy = RetrainPolicy()
    gate: GatePolicy = GatePolicy()
    rollout: RolloutPolicy = RolloutPolicy()
    monitor: MonitorPolicy = MonitorPolicy()
    promotion: PromotionPolicy = PromotionPolicy()
    compute: ComputePolicy = ComputePolicy()
