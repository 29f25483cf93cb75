"""The decisions that had no event of their own now publish one, from where they are made, once: a replayed
trigger publishes nothing twice (lifecycle/steps/announcements.py)."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.core import notifications as told
from lifecycle.core.notifications import Announcement
from lifecycle.handlers.azureml_runs import run_completed, run_status_changed
from lifecycle.handlers.data import data_arrived
from lifecycle.handlers.promotion import model_promoted, model_shared, review
from lifecycle.handlers.registration import review as review_held
from lifecycle.steps.announcements import announce
from tests.fakes import fake_environments, fake_platform
from tests.lifecycle.test_handlers import GOOD, LEAKY, blob, run_event
from tests.lifecycle.test_promotion import MODEL, promoted_event, released, shared_event

BAD = {"metrics": {"f1": 0.3}, "champion": None, "champion_error": None}


def published(p, event_type: str) -> list[dict]:
    return [d for t, _, d in p.events.published if t == event_type]


def test_training_started_once_per_job_whatever_is_replayed():
    p = fake_platform()
    drop = blob("day1.csv")
    data_arrived(drop, p)
    data_arrived(drop, p)
    (started,) = published(p, told.TRAINING_STARTED)
    job = p.jobs.submitted[0].job_name
    assert (started["job"], started["model"], started["trigger"], started["newBatches"]) == \
        (job, "tabular-classifier", "data", 1)


def test_registered_and_rejected_once_each():
    p = fake_platform()
    for metrics in (GOOD, BAD):
        data_arrived(blob(f"drop-{metrics['metrics']['f1']}.csv"), p)
        job = p.jobs.submitted[-1].job_name
        p.jobs.finish(job, metrics=metrics)
        run_completed(run_event("RunCompleted", job), p)
        run_completed(run_event("RunCompleted", job), p)       # redelivered
    (registered,) = published(p, told.MODEL_REGISTERED)
    (rejected,) = published(p, told.MODEL_REJECTED)
    assert registered["version"] == "1" and registered["metric"] == "f1" and registered["metrics"]["f1"] == 0.85
    assert rejected["version"] == "" and "0.3" in " ".join(rejected["reasons"])


def test_a_held_model_told_once_and_the_persons_decision_told_too():
    p = fake_platform()
    data_arrived(blob("leaky.csv"), p)
    job = p.jobs.submitted[-1].job_name
    p.jobs.finish(job, metrics=LEAKY)
    run_completed(run_event("RunCompleted", job), p)
    run_completed(run_event("RunCompleted", job), p)
    assert len(published(p, told.MODEL_HELD)) == 1 and published(p, told.MODEL_REGISTERED) == []
    review_held(p, job, approve=True, by="alice")
    (registered,) = published(p, told.MODEL_REGISTERED)
    assert (registered["by"], registered["job"]) == ("alice", job)


def test_a_failed_training_job_told_once():
    p = fake_platform()
    data_arrived(blob("broken.csv"), p)
    job = p.jobs.submitted[-1].job_name
    p.jobs.finish(job, status="Failed", error="column label not found in broken.csv")
    run_status_changed(run_event("RunStatusChanged", job, status="Failed"), p)
    run_status_changed(run_event("RunStatusChanged", job, status="Failed"), p)
    (failed,) = published(p, told.TRAINING_FAILED)
    assert failed["status"] == "Failed" and "label not found" in failed["error"]


def test_a_promotion_approved_or_rejected_is_told():
    for approve, event_type in ((True, told.PROMOTION_APPROVED), (False, told.PROMOTION_REJECTED)):
        preprod, prod = fake_environments(approval="required")
        released(preprod, "1")
        model_promoted(promoted_event(preprod), preprod)
        model_shared(shared_event(preprod), prod)
        review(prod, f"{MODEL}:1", approve=approve, by="ana")
        (told_of,) = published(prod, event_type)
        assert (told_of["model"], told_of["by"]) == (f"{MODEL}:1", "ana")


def test_an_announcement_cut_short_is_published_again_once_its_claim_is_stale_and_then_never():
    p = fake_platform()
    start = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

    class Crash(Exception):
        pass

    class Failing:
        def publish(self, *args):
            raise Crash()

    with pytest.raises(Crash):
        announce(replace(p, events=Failing()), told.TRAINING_STARTED, "jobs/j", {"job": "j"}, "j", now=start)
    assert p.state.get(Announcement, f"{told.TRAINING_STARTED}/j").sent is False
    # a concurrent caller leaves a fresh claim to its claimant; a stale one is taken over, once
    assert not announce(p, told.TRAINING_STARTED, "jobs/j", {"job": "j"}, "j", now=start + timedelta(seconds=5))
    later = start + timedelta(minutes=2)
    assert announce(p, told.TRAINING_STARTED, "jobs/j", {"job": "j"}, "j", unfinished_only=True, now=later)
    assert not announce(p, told.TRAINING_STARTED, "jobs/j", {"job": "j"}, "j", now=later)
    assert len(published(p, told.TRAINING_STARTED)) == 1
    assert not announce(p, told.MODEL_REGISTERED, "jobs/k", {}, "k", unfinished_only=True)   # never begun
    assert published(p, told.MODEL_REGISTERED) == []
