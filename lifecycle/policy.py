"""When to retrain: which drops are complete and not yet trained on, and whether the cooldown allows a run."""
from __future__ import annotations

from datetime import datetime

from lifecycle.records import Drop, TrainingRun, parse_time
from lifecycle.settings import Settings


def ready_drops(drops: list[Drop], settings: Settings, now: datetime) -> list[Drop]:
    """Complete drops no training job has taken, newest last."""
    ready = [d for d in drops if not d.job and d.complete(now, settings.drop_quiet_seconds)]
    return sorted(ready, key=lambda d: d.last_seen)


def cooldown_left(runs: list[TrainingRun], settings: Settings, now: datetime) -> float:
    """Seconds until another training run may start (0 if it may start now)."""
    if not runs or settings.retrain_cooldown_minutes <= 0:
        return 0.0
    last = max(parse_time(r.submitted_at) for r in runs if r.submitted_at)
    return max(0.0, settings.retrain_cooldown_minutes * 60 - (now - last).total_seconds())
