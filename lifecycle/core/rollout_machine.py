"""The blue/green rollout of one model version on one endpoint, as a state machine that ticks advance.

    deploying → smoke → [mirror] → canary 10% → 50% → 100% → promoted
         └──────────┴───────┴──────────┴─────────────┴──────→ rolled_back

This module is pure: it is given the time (`now`) and the policy, and says what state comes next and what
traffic each state wants; lifecycle/steps/rollouts.py observes the platform, asks the judge, stores the new
state with a conditional write (so one rollout runs per endpoint and a duplicate tick cannot double a step)
and acts."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from lifecycle.core.policies import RolloutPolicy
from lifecycle.core.state_records import Record
from lifecycle.core.times import iso, parse_time


class Phase(StrEnum):
    """A rollout's phase, stored as its value."""
    DEPLOYING = "deploying"
    SMOKE = "smoke"
    MIRROR = "mirror"
    CANARY = "canary"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"


ACTIVE = (Phase.DEPLOYING, Phase.SMOKE, Phase.MIRROR, Phase.CANARY)
TERMINAL = (Phase.PROMOTED, Phase.ROLLED_BACK)
COLOURS = ("blue", "green")


@dataclass(frozen=True)
class Rollout(Record):
    """The endpoint's current (or last) rollout; keyed by endpoint, so there is one at a time."""
    COLLECTION: ClassVar[str] = "rollouts"
    endpoint: str
    rollout_id: str
    model: str                       # the challenger, "name:version"
    colour: str                      # its deployment
    baseline: str = ""               # the live deployment when it started ("" for the first model)
    baseline_model: str = ""
    phase: str = Phase.DEPLOYING
    step: int = -1                   # index into the canary steps while in Phase.CANARY
    phase_started: str = ""
    started_at: str = ""
    finished_at: str = ""
    paused: bool = False
    reason: str = ""                 # why it ended as it did
    judgement: dict | None = None    # the judge's last verdict, with evidence
    history: tuple = ()              # {time, phase, step, note, judgement?}
    queued: tuple = ()               # models registered meanwhile, waiting their turn
    retire: str = ""                 # the old colour, deleted once retire_at has passed
    retire_at: str = ""
    revision: str = ""               # new on every stored change: tells a stale copy from the stored one
    smoke_lease: str = ""            # a tick is smoke-testing until then: other ticks leave it alone
    settling: bool = False           # its end is stored, its acts (traffic, tags, history, event) not all done

    @property
    def key(self) -> str:
        return self.endpoint

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE

    @property
    def live_model(self) -> str:
        """The model serving the endpoint's traffic now."""
        return self.model if self.phase == Phase.PROMOTED else self.baseline_model

    @property
    def live_deployment(self) -> str:
        return self.colour if self.phase == Phase.PROMOTED else self.baseline

    def seconds_in_phase(self, now: datetime) -> float:
        return (now - parse_time(self.phase_started)).total_seconds()


@dataclass(frozen=True)
class RolloutEvent(Record):
    """A finished rollout, kept for the record (the Rollout itself is replaced by the next one)."""
    COLLECTION: ClassVar[str] = "rollout-history"
    rollout_id: str
    endpoint: str
    model: str
    outcome: str
    reason: str
    started_at: str
    finished_at: str
    history: tuple = ()

    @property
    def key(self) -> str:
        return self.rollout_id


def rollout_id(endpoint: str, model: str) -> str:
    return f"{endpoint}/{model.replace(':', '-')}"


def why_not_start(model: str, current: Rollout | None, finished: RolloutEvent | None) -> str | None:
    """Why `model` ("name:version") must not roll out on this endpoint, or None if it may. History
    decides, not the event that offers it: a version already promoted, rolled back or superseded never
    rolls out again, and neither does one not newer than the live model (Event Grid redelivers, and a
    tag update may raise ModelRegistered again)."""
    if finished is not None:
        return f"{model} was already {finished.outcome.replace('_', ' ')} ({finished.finished_at})"
    if current is None:
        return None
    if current.model == model:
        return f"{model} is already {'rolling out' if current.active else current.phase.replace('_', ' ')}"
    if model in current.queued:
        return f"{model} is already queued behind {current.model}"
    live = current.live_model
    if live and not newer(model, live):
        return f"{model} is not newer than the live {live}"
    return None


def newer(model: str, than: str) -> bool:
    """Whether version `model` comes after `than` of the same model; versions that are not numbers
    (or another model's) are not ordered, so they count as newer."""
    name, _, version = model.partition(":")
    other, _, other_version = than.partition(":")
    if name != other or not (version.isdigit() and other_version.isdigit()):
        return True
    return int(version) > int(other_version)


def start(endpoint: str, model: str, live: Rollout | None, now: datetime) -> Rollout:
    """A new rollout of `model`, beside what `live` (the previous rollout) left serving."""
    baseline = live.live_deployment if live else ""
    baseline_model = live.live_model if live else ""
    colour = next(c for c in COLOURS if c != baseline)
    first = Rollout(endpoint=endpoint, rollout_id=rollout_id(endpoint, model), model=model, colour=colour,
                    baseline=baseline, baseline_model=baseline_model, phase=Phase.DEPLOYING, phase_started=iso(now),
                    started_at=iso(now))
    beside = f" beside {baseline} ({baseline_model})" if baseline else ""
    return note(first, f"deploying {model} to {colour}{beside}", now)


def note(r: Rollout, text: str, now: datetime, judgement: dict | None = None) -> Rollout:
    entry = {"time": iso(now), "phase": r.phase, "step": r.step, "note": text}
    if judgement:
        entry["judgement"] = judgement
    return replace(r, history=r.history + (entry,))


def move(r: Rollout, phase: Phase, text: str, now: datetime, *, step: int = -1, judgement: dict | None = None,
         **changes) -> Rollout:
    # to the millisecond: the judge's window opens here, and the smoke test's requests end just before
    moved = replace(r, phase=phase, step=step, phase_started=iso(now, "milliseconds"),
                    judgement=judgement or r.judgement, smoke_lease="", **changes)
    if phase in TERMINAL:
        moved = replace(moved, finished_at=moved.phase_started, settling=True)
    return note(moved, text, now, judgement)


def after_smoke(r: Rollout, policy: RolloutPolicy, now: datetime) -> Rollout:
    steps = policy.steps
    if not r.baseline:
        return promote(r, "first model on this endpoint: smoke test passed, it takes all traffic", now)
    if policy.mirror_percent > 0:
        return move(r, Phase.MIRROR, f"mirroring {policy.mirror_percent}% of {r.baseline}'s traffic to {r.colour}",
                    now)
    if steps[0] == 100:
        return promote(r, f"smoke test passed; no canary steps configured, {r.colour} takes all traffic", now)
    return move(r, Phase.CANARY, f"{r.colour} takes {steps[0]}% of the traffic", now, step=0)


def next_step(r: Rollout, policy: RolloutPolicy, judgement: dict, now: datetime) -> Rollout:
    """The judge passed the current phase: the next canary step, or promotion when the next share is 100%
    (with no traffic left on the live colour there is nothing to compare against: the last judged step
    is the last one below 100%)."""
    steps = policy.steps
    upcoming = 0 if r.phase == Phase.MIRROR else r.step + 1
    passed = "mirror" if r.phase == Phase.MIRROR else f"step {steps[r.step]}%"
    if upcoming < len(steps) and steps[upcoming] < 100:
        return move(r, Phase.CANARY, f"{passed} passed; {r.colour} takes {steps[upcoming]}%", now, step=upcoming,
                    judgement=judgement)
    return promote(r, f"{passed} passed; {r.colour} takes all traffic", now, judgement)


def promote(r: Rollout, text: str, now: datetime, judgement: dict | None = None) -> Rollout:
    return move(r, Phase.PROMOTED, text, now, judgement=judgement, reason=text, retire=r.baseline)


def roll_back(r: Rollout, reason: str, now: datetime, judgement: dict | None = None) -> Rollout:
    back = r.baseline or "no deployment"
    return move(r, Phase.ROLLED_BACK, f"rolled back: {reason}; traffic restored to {back}", now, judgement=judgement,
                reason=reason)


def hold(r: Rollout, problem: str, now: datetime, judgement: dict | None = None) -> Rollout:
    """Pause for a person: the step cannot be judged for a reason that is not the new colour's doing."""
    return note(replace(r, paused=True, judgement=judgement or r.judgement),
                f"held for a person: {problem}; once it is fixed, `mlops rollout resume` (or rollback, or promote)",
                now, judgement)


def desired_traffic(r: Rollout, policy: RolloutPolicy) -> tuple[dict[str, int], dict[str, int]]:
    """(traffic, mirror_traffic) the endpoint should have in this state."""
    base = {r.baseline: 100} if r.baseline else {}
    if r.phase == Phase.CANARY:
        share = policy.steps[r.step]
        split = {r.colour: share}
        if r.baseline and share < 100:
            split[r.baseline] = 100 - share
        return split, {}
    if r.phase == Phase.MIRROR:
        return base, {r.colour: policy.mirror_percent}
    if r.phase == Phase.PROMOTED:
        return {r.colour: 100}, {}
    return base, {}
