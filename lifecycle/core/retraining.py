"""When to retrain: which drops are complete and not yet trained on, and whether the cooldown allows a run."""
from __future__ import annotations

from datetime import datetime

from lifecycle.core.policies import RetrainPolicy
from lifecycle.core.state_records import Drop, TrainingRun
from lifecycle.core.times import parse_time


def ready_drops(drops: list[Drop], policy: RetrainPolicy, now: datetime) -> list[Drop]:
    """Complete drops no training job has taken, oldest first: each is trained on, none is skipped."""
    ready = [d for d in drops if not d.job and d.complete(now, policy.drop_quiet_seconds)]
    return sorted(ready, key=lambda d: (d.last_seen, d.prefix))


def empty_drops(drops: list[Drop], policy: RetrainPolicy, now: datetime) -> list[Drop]:
    """Drops whose marker came but no data file after the quiet period: nothing will ever train them."""
    return [d for d in drops if d.marker and not d.batches and not d.job
            and (now - parse_time(d.last_seen)).total_seconds() >= policy.drop_quiet_seconds]


def cooldown_left(runs: list[TrainingRun], policy: RetrainPolicy, now: datetime) -> float:
    """Seconds until another training run may start (0 if it may start now)."""
    if not runs or policy.cooldown_minutes <= 0:
        return 0.0
    last = max(parse_time(r.submitted_at) for r in runs if r.submitted_at)
    return max(0.0, policy.cooldown_minutes * 60 - (now - last).total_seconds())


def may_retry(drop: Drop, policy: RetrainPolicy) -> bool:
    """Whether a drop whose job the platform lost (a crash, a node gone) may be offered again."""
    return drop.attempts + 1 < policy.max_drop_attempts
