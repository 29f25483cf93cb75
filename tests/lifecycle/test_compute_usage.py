"""Training compute through the handlers, with in-memory fakes: a completed run keeps its duration, the gate's
decision goes onto the job's tags, a run markedly slower than its model's usual raises one `training_slowed`
alert (for a person) however often its completion is delivered, and the compute view lists each job's figures."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from lifecycle.core import notifications as told
from lifecycle.core.platform_values import JobUsage
from lifecycle.core.state_records import AlertRecord, TrainingRun
from lifecycle.handlers.azureml_runs import run_completed
from lifecycle.steps import compute_usage
from tests.fakes import fake_platform
from tests.lifecycle.test_handlers import GOOD, _trained, run_event

START = datetime(2026, 12, 1, 8, tzinfo=UTC)


def trained(p, minutes: float, at: datetime, usage: JobUsage | None = None, metrics=GOOD) -> str:
    """A training job that queued 10 s, ran `minutes` and completed, delivered as Azure ML would."""
    job = _trained(p, metrics)
    p.jobs.jobs[job] = replace(p.jobs.jobs[job], created=(at - timedelta(seconds=10)).isoformat(),
                               started=at.isoformat(), ended=(at + timedelta(minutes=minutes)).isoformat(),
                               usage=usage)
    run_completed(run_event("RunCompleted", job), p)
    return job


def test_the_gate_s_decision_and_the_registered_version_are_on_the_job_s_tags():
    p = fake_platform()
    job = trained(p, 2, START)
    tags = p.jobs.get(job).tags
    assert tags["mlops.gate"] == "registered" and tags["mlops.registered_version"] == "tabular-classifier:1"
    assert "mlops.gate_reasons" in tags
    worse = trained(p, 2, START + timedelta(hours=1), metrics={"metrics": {"f1": 0.5}, "champion": {"f1": 0.85}})
    tags = p.jobs.get(worse).tags
    assert tags["mlops.gate"] == "rejected" and "mlops.registered_version" not in tags
    assert "0.5000" in tags["mlops.gate_reasons"]


def test_a_tag_that_cannot_be_written_does_not_undo_the_registration(monkeypatch, caplog):
    p = fake_platform()

    def refuse(name, tags):
        raise RuntimeError("the workspace said 503")
    monkeypatch.setattr(p.jobs, "tag", refuse)
    job = trained(p, 2, START)
    assert p.registry.versions("tabular-classifier") and p.state.get(TrainingRun, job).status == "Completed"
    assert "could not tag job" in caplog.text and "503" in caplog.text


def test_a_markedly_slower_run_raises_one_alert_for_a_person_and_its_redelivery_none():
    p = fake_platform()
    for day in range(3):
        trained(p, 2, START + timedelta(days=day))
    assert p.state.list(AlertRecord) == [] and told.TRAINING_SLOWED not in p.events.types()
    slow = trained(p, 7, START + timedelta(days=3), usage=JobUsage(96.0, 40.0))
    run_completed(run_event("RunCompleted", slow), p)                      # delivered again
    assert p.state.get(TrainingRun, slow).duration_seconds == 420
    (alert,) = p.state.list(AlertRecord)
    assert (alert.signal, alert.outcome, alert.job, alert.model) == ("training_slowed", "needs a person", slow,
                                                                     "tabular-classifier")
    assert alert.summary == "training took 7m00s, 3.5x its usual 2m00s (the median of 3 earlier runs)"
    assert alert.evidence["cpu_percent"] == 96.0
    (event,) = [(s, d) for t, s, d in p.events.published if t == told.TRAINING_SLOWED]
    assert event[0] == f"jobs/{slow}" and event[1]["factor"] == "3.5" and event[1]["usual"] == "2m00s"
    trained(p, 2, START + timedelta(days=4))                               # back to usual: nothing new
    assert len(p.state.list(AlertRecord)) == 1


def test_the_compute_view_lists_each_job_with_its_cost_totals_and_advice():
    p = fake_platform()
    for day in range(3):
        trained(p, 2, START + timedelta(days=day), usage=JobUsage(50.0, 20.0, cpu_seconds=240))
    slow = trained(p, 7, START + timedelta(days=3), usage=JobUsage(96.0, 40.0))
    view = compute_usage.collect(p, START + timedelta(days=4))
    assert [j["kind"] for j in view["jobs"]] == ["training"] * 4
    first, last = view["jobs"][0], view["jobs"][-1]
    assert first["duration_seconds"] == 120 and first["queue_seconds"] == 10 and first["cpu_percent"] == 50.0
    assert first["cost"] == 120 / 3600 * 0.293 and first["slowed"] is None
    assert last["name"] == slow and last["slowed"] == {"usual_seconds": 120, "factor": 3.5}
    assert view["totals"]["jobs"] == 4 and view["totals"]["job_minutes"] == 13
    assert (view["vm_size"], view["cores"], view["currency"], view["nodes"]) == ("Standard_DS3_v2", 4, "USD", None)
    assert {a["setting"] for a in view["advice"]} == {"max_nodes", "min_nodes", "idle_seconds", "vm_size"}
    assert next(a for a in view["advice"] if a["setting"] == "vm_size")["suggested"] == "Standard_F8s_v2"
    assert view["notes"] == []


def test_metrics_that_cannot_be_read_leave_the_figures_out_with_a_note(monkeypatch):
    p = fake_platform()
    trained(p, 2, START)

    def down(*args, **kwargs):
        raise ConnectionError("metrics endpoint unreachable")
    monkeypatch.setattr(p.metrics, "job_usage", down)
    monkeypatch.setattr(p.metrics, "cluster_usage", down)
    view = compute_usage.collect(p, START + timedelta(hours=1))
    (only,) = view["jobs"]
    assert only["duration_seconds"] == 120 and only["cpu_percent"] is None and view["nodes"] is None
    assert view["notes"] == ["jobs' CPU and memory could not be read: metrics endpoint unreachable",
                             "the cluster's node metrics could not be read: metrics endpoint unreachable"]
