"""Blue/green rollouts: a registered model goes to the idle colour and earns its traffic step by step,
judged against the live colour on the same window; ticks and events advance it, nothing waits."""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from lifecycle import clock
from lifecycle.core import model_catalog
from lifecycle.core import rollout_machine as rm
from lifecycle.core.canary_judge import JudgePolicy, Outcome, Window, judge
from lifecycle.core.platform_values import ModelVersion, NoTrafficLogs, ProvisioningState
from lifecycle.core.rollout_machine import Phase, Rollout, RolloutEvent
from lifecycle.core.state_records import Decision
from lifecycle.core.times import iso, parse_time
from lifecycle.ports import (
    UsesCollected,
    UsesEndpoints,
    UsesEvents,
    UsesFeedback,
    UsesMetrics,
    UsesPolicies,
    UsesRegistry,
    UsesState,
)

log = logging.getLogger("lifecycle.rollout")
SETTLED = (ProvisioningState.SUCCEEDED, ProvisioningState.FAILED, ProvisioningState.CANCELED)
SMOKE_ROUNDS = 4
SMOKE_ATTEMPTS, SMOKE_RETRY_SECONDS = 3, 2.0
SMOKE_LEASE_SECONDS = 120
WARMUP_REQUESTS, WARMUP_CONCURRENCY = 16, 4
OVERRIDES = ("promote", "rollback", "pause", "resume")
TRAFFIC_LOG_GRACE = timedelta(minutes=15)   # Log Analytics ingests minutes late: a fresh endpoint's logs may not be in


class RolloutPorts(UsesPolicies, UsesState, UsesRegistry, UsesEndpoints, UsesMetrics, UsesCollected, UsesFeedback,
                   UsesEvents, Protocol):
    """What rollouts use of the platform."""


def offer(p: RolloutPorts, model: ModelVersion, now: datetime) -> Rollout | None:
    """A registered version asks to roll out: start it, queue it, or (as history says) ignore it."""
    policy = p.policies.rollout
    endpoint = p.endpoints.ensure_endpoint(p.policies.model.endpoint).name
    before = p.state.get(Rollout, endpoint)
    refused = rm.why_not_start(model.ref, before, p.state.get(RolloutEvent, rm.rollout_id(endpoint, model.ref)))
    if refused:
        log.info("nothing to roll out: %s", refused)
        if before is not None and before.model == model.ref and before.phase == Phase.DEPLOYING:
            p.endpoints.create_deployment(endpoint, before.colour, model)   # replayed: make sure it was asked for
        return before
    if before is not None and not before.active:
        _archive(p, before)            # kept before the record is replaced, even if its settling was cut short
    if before and before.active:
        wanted = rm.note(replace(before, queued=before.queued + (model.ref,)), f"{model.ref} registered: queued", now)
        if policy.on_new_model == "supersede":
            wanted = rm.roll_back(wanted, f"superseded by {model.ref}", now)
    else:
        wanted = _started(rm.start(endpoint, model.ref, before, now), before)
    wanted = replace(wanted, revision=uuid.uuid4().hex)
    after = p.state.update(Rollout, endpoint, lambda current: wanted if current == before else None)
    if after != wanted:
        raise StateMoved(f"the rollout of {endpoint} moved while {model.ref} was offered: try again")
    _entered(p, before, after)
    return after


def _started(new: Rollout, previous: Rollout | None) -> Rollout:
    # Whatever the previous rollout queued comes after this one; its pending retirement is moot (reused colour).
    return replace(new, queued=tuple(q for q in (previous.queued if previous else ()) if q != new.model))


class StateMoved(RuntimeError):
    """A concurrent step changed the rollout first; raising lets the delivery retry against the new state."""


def catch_up(p: RolloutPorts, now: datetime) -> list[Rollout]:
    """Registered versions of this app that no rollout has seen: their ModelRegistered was lost (a crash
    before it was delivered, an event nobody subscribed to). Offered as the event would have."""
    current = p.state.get(Rollout, p.policies.model.endpoint)
    live = current.live_model if current else ""
    pending = sorted((d for d in p.state.list(Decision) if d.version and d.model_name == p.policies.model.name
                      and (not live or rm.newer(f"{d.model_name}:{d.version}", live))),
                     key=lambda d: (len(d.version), d.version))
    started = []
    for decision in pending:
        ref = f"{decision.model_name}:{decision.version}"
        current = p.state.get(Rollout, p.policies.model.endpoint)
        if rm.why_not_start(ref, current, p.state.get(RolloutEvent, rm.rollout_id(p.policies.model.endpoint, ref))):
            continue
        model = p.registry.get(decision.model_name, decision.version)
        if model is None:
            continue                   # the registry lost it: nothing to deploy
        log.warning("%s was registered but never offered for rollout: offering it now", ref)
        try:
            result = offer(p, model, now)
        except StateMoved:
            continue                   # the next tick looks again
        if result is not None:
            started.append(result)
    return started


def tick(p: RolloutPorts, now: datetime) -> list[Rollout]:
    """One step of the model's rollout if it can move; called by the reconcile timer and by rollout events.
    A rollout on an endpoint no model names now (a renamed one) is the first model's to finish."""
    moved = []
    for r in p.state.list(Rollout):
        owner = model_catalog.by_endpoint(p.catalog, r.endpoint) or p.catalog[0]
        if owner.model.name != p.policies.model.name:
            continue
        result = advance(p, r, now)
        if result is not None:
            moved.append(result)
    return moved


def advance(p: RolloutPorts, r: Rollout, now: datetime) -> Rollout | None:
    policy = p.policies.rollout
    if not r.active:
        return _after_end(p, r, now)
    if r.paused or p.state.get(Rollout, r.endpoint) != r:
        return None                      # paused, or another tick moved it since it was read
    _ensure_traffic(p, r)
    if r.phase == Phase.DEPLOYING:
        endpoint = p.endpoints.get(r.endpoint)
        deployment = endpoint.deployment(r.colour) if endpoint else None
        if deployment is None or deployment.model != r.model:
            # never asked for (a crash right after the rollout was stored), or lost: ask again (idempotent)
            name, _, version = r.model.partition(":")
            model = p.registry.get(name, version)
            if model is not None:
                p.endpoints.create_deployment(r.endpoint, r.colour, model)
        settled = deployment is not None and deployment.state in SETTLED
        if deployment is None or deployment.model != r.model or not settled:
            if r.seconds_in_phase(now) > policy.max_step_seconds:
                return _commit(p, r, rm.roll_back(r, f"{r.colour} was not ready after {policy.max_step_seconds:.0f} s",
                                                  now))
            return None
        if deployment.state != ProvisioningState.SUCCEEDED:
            failed = f"deployment {r.colour} {deployment.state.lower()}: {deployment.error or 'no reason given'}"
            return _commit(p, r, rm.roll_back(r, failed, now))
        return _commit(p, r, rm.move(r, Phase.SMOKE, f"{r.colour} is ready; smoke-testing it through the deployment "
                                     "header", now))
    if r.phase == Phase.SMOKE:
        # One tick smoke-tests; a timer tick and a rollout event arriving together must not both send
        # requests, or the second one's land in the canary's window.
        if r.smoke_lease and parse_time(r.smoke_lease) > now:
            return None
        lease = iso(now + timedelta(seconds=SMOKE_LEASE_SECONDS))
        claimed = _commit(p, r, replace(r, smoke_lease=lease), quiet=True)
        if claimed is None:
            return None
        passed, detail, evidence = smoke_test(p, claimed)
        # The smoke test's requests took a while: the next phase (and the judge's window) opens after them,
        # so this is a new reading of the clock, not the tick's.
        tested = clock.now()
        if not passed:
            return _commit(p, claimed, rm.roll_back(claimed, f"smoke test failed: {detail}", tested,
                                                    {"smoke": evidence}))
        return _commit(p, claimed, rm.after_smoke(rm.note(claimed, f"smoke test passed: {detail}", tested), policy,
                                                  tested))
    return _judge_step(p, r, now)


def _judge_step(p: RolloutPorts, r: Rollout, now: datetime) -> Rollout | None:
    policy = p.policies.rollout
    since = parse_time(r.phase_started)
    # ground truth that has come in for requests of this step (labels trail their predictions)
    labels = p.feedback.labels(since, label_column=p.policies.model.target_column)
    try:
        baseline, canary = _window(p, r, r.baseline, since, labels), _window(p, r, r.colour, since, labels)
    except NoTrafficLogs as missing:
        return _without_traffic_logs(p, r, now, str(missing))
    verdict = judge(baseline, canary, JudgePolicy(min_requests=policy.min_requests,
                                                  min_predictions=policy.min_requests, task=p.policies.model.task))
    evidence = verdict.to_json()
    bake = policy.mirror_seconds if r.phase == Phase.MIRROR else policy.bake_seconds
    elapsed = r.seconds_in_phase(now)
    if verdict.outcome == Outcome.FAIL:
        return _commit(p, r, rm.roll_back(r, verdict.summary, now, evidence))
    if verdict.outcome == Outcome.PASS and elapsed >= bake:
        return _commit(p, r, rm.next_step(r, policy, evidence, now))
    if elapsed > policy.max_step_seconds:
        still = f"still {verdict.outcome} after {elapsed:.0f} s: {verdict.summary}"
        return _commit(p, r, rm.roll_back(r, still, now, evidence))
    if r.judgement != evidence:
        _commit(p, r, replace(r, judgement=evidence), quiet=True)   # the latest evidence, for `mlops status`
    return None


def _without_traffic_logs(p: RolloutPorts, r: Rollout, now: datetime, problem: str) -> Rollout | None:
    """The platform logs no request of the endpoint: say so at once, and hold the step for a person.

    Held, never rolled back: a missing diagnostic setting says nothing about the new model, and a rolled-back
    version never rolls out again (history decides), so a rollback would throw away a good model, and every
    later one the same way, with the timeout as the only explanation. The canary keeps the share its step
    gave it, which a person chose for an unproven model. Log Analytics ingests minutes late, so a fresh
    endpoint's first logs may still be on their way: the hold comes after a grace period (at most the step's
    deadline); the evidence says what is wrong from the first tick."""
    evidence = {"outcome": Outcome.INCONCLUSIVE.value, "summary": problem,        # a check, so `mlops status` lists it
                "checks": [{"name": "traffic", "outcome": Outcome.INCONCLUSIVE.value, "detail": problem,
                            "evidence": {}}]}
    grace = min(TRAFFIC_LOG_GRACE.total_seconds(), p.policies.rollout.max_step_seconds)
    if r.seconds_in_phase(now) < grace:
        if r.judgement != evidence:
            _commit(p, r, replace(r, judgement=evidence), quiet=True)    # for `mlops status`
        return None
    log.warning("rollout %s held: %s", r.rollout_id, problem)
    return _commit(p, r, rm.hold(r, problem, now, evidence))


def _window(p: RolloutPorts, r: Rollout, deployment: str, since: datetime, labels: dict) -> Window:
    traffic = p.metrics.window(r.endpoint, deployment, since)
    if labels:            # one read of the outputs for both: predictions, and those with ground truth
        outputs = [o for o in p.collected.records(r.endpoint, deployment, "model_outputs", since) if "prediction" in o]
        predictions = tuple(o["prediction"] for o in outputs)
        labelled = tuple((o["prediction"], labels[str(o.get("request_id"))]) for o in outputs
                         if str(o.get("request_id")) in labels)
    else:
        predictions, labelled = tuple(p.collected.predictions(r.endpoint, deployment, since)), ()
    return Window(deployment=deployment, requests=traffic.requests, server_errors=traffic.server_errors,
                  latencies_ms=tuple(x.latency_ms for x in traffic.samples), predictions=predictions,
                  labelled=labelled)


def _warm_up(p: RolloutPorts, r: Rollout, rows: list[dict]) -> None:
    """Single rows, as live traffic comes, several at once so that every worker gets some: a fresh
    worker's first requests of a kind run slow (lazy imports, cold pages), and the judge should not
    time those against the warm live colour."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(WARMUP_CONCURRENCY) as pool:
        list(pool.map(lambda i: p.endpoints.invoke(r.endpoint, r.colour, {"data": [rows[i % len(rows)]]}),
                      range(WARMUP_REQUESTS)))


def smoke_test(p: RolloutPorts, r: Rollout) -> tuple[bool, str, dict]:
    policy = p.policies.rollout
    name, _, version = r.model.partition(":")
    rows = p.registry.reference_sample(name, version, policy.smoke_rows)
    if not rows:
        return False, f"{r.model} has no reference sample (reference/sample.csv) to test with", {}
    # A few rounds, so that every worker of the new deployment has loaded the model before it is judged;
    # the last answer is the one checked. A timeout, a "busy" answer or a slow one is a deployment still
    # warming up on a loaded machine, not a broken one: it is asked again, a few times.
    for attempt in range(SMOKE_ATTEMPTS):
        for _ in range(SMOKE_ROUNDS):
            answer = p.endpoints.invoke(r.endpoint, r.colour, {"data": rows})
            if answer.status != 200:
                break
        slow = answer.status == 200 and answer.latency_ms > policy.smoke_max_latency_ms
        if (answer.status not in (408, 429, 503) and not slow) or attempt == SMOKE_ATTEMPTS - 1:
            break
        log.info("smoke test of %s: %d in %.0f ms on attempt %d; asking again", r.colour, answer.status,
                 answer.latency_ms, attempt + 1)
        time.sleep(SMOKE_RETRY_SECONDS)
    if answer.status == 200:
        _warm_up(p, r, rows)
    evidence = {"rows": len(rows), "rounds": SMOKE_ROUNDS, "status": answer.status,
                "latency_ms": round(answer.latency_ms, 1)}
    if answer.status != 200:
        return False, f"{r.colour} answered {answer.status}: {answer.body[:300]}", evidence
    import json
    try:
        predictions = json.loads(answer.body).get("predictions")
    except (ValueError, AttributeError):
        predictions = None
    if not isinstance(predictions, list) or len(predictions) != len(rows):
        return False, (f"{r.colour} answered {len(rows)} rows with {answer.body[:200]!r}, "
                       "not one prediction per row"), evidence
    if answer.latency_ms > policy.smoke_max_latency_ms:
        return False, (f"{len(rows)} rows took {answer.latency_ms:.0f} ms "
                       f"(limit {policy.smoke_max_latency_ms:.0f} ms)"), evidence
    return True, f"{len(rows)} reference rows answered in {answer.latency_ms:.0f} ms", evidence


def _after_end(p: RolloutPorts, r: Rollout, now: datetime) -> Rollout | None:
    if r.settling:
        return _settle(p, r)
    if r.retire and r.retire_at and now >= parse_time(r.retire_at):
        endpoint = p.endpoints.get(r.endpoint)
        if endpoint and endpoint.deployment(r.retire) and not endpoint.traffic.get(r.retire):
            p.endpoints.delete_deployment(r.endpoint, r.retire)
        return _commit(p, r, rm.note(replace(r, retire="", retire_at=""), f"retired {r.retire}", now), quiet=True)
    # The newest waiting version goes next: the ones queued before it were trained on older data and would only
    # delay it (`mlops simulate` showed a daily retrain behind day-long rollouts serving ever staler models).
    for ref in reversed(r.queued):
        finished = p.state.get(RolloutEvent, rm.rollout_id(r.endpoint, ref))
        refused = rm.why_not_start(ref, replace(r, queued=()), finished)
        if refused:
            log.info("dropped %s from the queue: %s", ref, refused)
            return _commit(p, r, replace(r, queued=tuple(q for q in r.queued if q != ref)), quiet=True)
        model = p.registry.get(*ref.split(":", 1))
        if model is None:
            return None
        _archive(p, r)
        older = r.queued[:r.queued.index(ref)]
        started = rm.start(r.endpoint, model.ref, r, now)
        if older:
            started = rm.note(started, f"superseded in the queue: {', '.join(older)}", now)
            log.info("rolling out %s, the newest queued; dropped the older %s", ref, ", ".join(older))
        return _commit(p, r, replace(started, queued=r.queued[r.queued.index(ref) + 1:]))
    return None


def override(p: RolloutPorts, endpoint: str, action: str, now: datetime) -> Rollout:
    """A person's decision: promote, rollback, pause or resume the endpoint's rollout now."""
    if action not in OVERRIDES:
        raise ValueError(f"unknown rollout action {action!r}: {', '.join(OVERRIDES)}")
    r = p.state.get(Rollout, endpoint)
    if r is None or not r.active:
        last = f" (the last one {r.phase})" if r else ""
        raise ValueError(f"endpoint {endpoint} has no rollout in progress{last}")
    if action == "promote":
        if r.phase == Phase.DEPLOYING:
            raise ValueError(f"{r.colour} is not ready yet: it cannot take traffic")
        new = rm.promote(r, "promoted by hand", now)
    elif action == "rollback":
        new = rm.roll_back(r, "rolled back by hand", now)
    else:
        new = rm.note(replace(r, paused=action == "pause"), f"{action}d by hand", now)
    result = _commit(p, r, new)
    if result is None:
        raise RuntimeError(f"the rollout of {endpoint} moved meanwhile: look at `mlops status` and try again")
    return result


# -- storing a step and acting on it ------------------------------------------------------------------
def _commit(p: RolloutPorts, old: Rollout, new: Rollout, quiet: bool = False) -> Rollout | None:
    """Store `new` only if the rollout is still `old`: a concurrent or duplicate tick finds it moved and stops."""
    if new.phase == Phase.PROMOTED and old.phase != Phase.PROMOTED:
        due = parse_time(new.finished_at) + timedelta(seconds=p.policies.rollout.retention_seconds)
        new = replace(new, retire_at=iso(due))
    new = replace(new, revision=uuid.uuid4().hex)
    stored = p.state.update(Rollout, old.endpoint, lambda current: new if current == old else None)
    if stored != new:
        return None
    if not quiet:
        _entered(p, old, new)
    return new


def _entered(p: RolloutPorts, old: Rollout | None, new: Rollout) -> None:
    """Act on a state just stored: deployments, traffic, registry tags, events. Each act is idempotent,
    and the next tick re-checks the traffic (and settles an end whose acts were cut short), so a failure
    here is repaired by retrying."""
    name, _, version = new.model.partition(":")
    if new.phase == Phase.DEPLOYING and (old is None or old.rollout_id != new.rollout_id):
        model = p.registry.get(name, version)
        if model is None:       # was an AttributeError on None: the same failure, said plainly
            raise LookupError(f"model {new.model} is no longer in the registry: cannot deploy it to {new.colour}")
        p.endpoints.create_deployment(new.endpoint, new.colour, model)
        p.registry.update_tags(name, version, {"mlops.alias": "challenger"})
        _publish(p, "MLOps.RolloutStarted", new)
        return
    if new.phase in rm.TERMINAL:
        if old is None or old.phase != new.phase or old.rollout_id != new.rollout_id:
            _settle(p, new)
        return
    _ensure_traffic(p, new)
    if old is not None and (old.phase, old.step) != (new.phase, new.step):
        _publish(p, "MLOps.RolloutProgressed", new)
    log.info("rollout %s: %s", new.rollout_id, new.history[-1]["note"] if new.history else new.phase)


def _settle(p: RolloutPorts, r: Rollout) -> Rollout | None:
    """Carry out a rollout's end: traffic, the rolled-back colour removed, aliases, the history record and
    the event; then mark it settled. Run again by the next tick if a crash cut it short."""
    name, _, version = r.model.partition(":")
    if not _ensure_traffic(p, r):
        return None                    # a colour that should take the traffic is not serving yet: next tick
    if r.phase == Phase.PROMOTED:
        p.registry.update_tags(name, version, {"mlops.alias": "champion"})
        if r.baseline_model:
            base_name, _, base_version = r.baseline_model.partition(":")
            p.registry.update_tags(base_name, base_version, {"mlops.alias": "previous"})
    else:
        endpoint = p.endpoints.get(r.endpoint)
        if endpoint and endpoint.deployment(r.colour) and r.colour != r.baseline and not endpoint.traffic.get(r.colour):
            p.endpoints.delete_deployment(r.endpoint, r.colour)
        if p.registry.get(name, version) is not None:
            p.registry.update_tags(name, version, {"mlops.alias": "rolled-back"})
    _archive(p, r)
    _publish(p, "MLOps.ModelPromoted" if r.phase == Phase.PROMOTED else "MLOps.RolloutRolledBack", r)
    log.info("rollout %s: %s", r.rollout_id, r.history[-1]["note"] if r.history else r.phase)
    return _commit(p, r, replace(r, settling=False), quiet=True)


def _ensure_traffic(p: RolloutPorts, r: Rollout) -> bool:
    """Give the endpoint the traffic this state wants; False while it cannot (a colour not serving yet)."""
    traffic, mirror = rm.desired_traffic(r, p.policies.rollout)
    endpoint = p.endpoints.get(r.endpoint)
    if endpoint is None:
        return True
    ready = {d.name for d in endpoint.deployments if d.state == ProvisioningState.SUCCEEDED}
    if not set(traffic) | set(mirror) <= ready:
        return False
    if endpoint.traffic != traffic or endpoint.mirror_traffic != mirror:
        p.endpoints.set_traffic(r.endpoint, traffic, mirror)
    return True


def _archive(p: RolloutPorts, r: Rollout) -> None:
    """The finished rollout into its history, once: what later decides that its version never rolls out again."""
    if r.phase in rm.TERMINAL:
        p.state.create(RolloutEvent(rollout_id=r.rollout_id, endpoint=r.endpoint, model=r.model, outcome=r.phase,
                                    reason=r.reason, started_at=r.started_at, finished_at=r.finished_at,
                                    history=r.history))


def _publish(p: RolloutPorts, event_type: str, r: Rollout) -> None:
    p.events.publish(event_type, f"endpoints/{r.endpoint}/rollouts/{r.model}", {
        "endpoint": r.endpoint, "model": r.model, "deployment": r.colour, "baseline": r.baseline,
        "baselineModel": r.baseline_model, "phase": r.phase, "step": r.step, "reason": r.reason,
        "judgement": r.judgement})


