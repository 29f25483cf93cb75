"""What a model trains on: its dataset root and training window. A file appended to a folder already trained
on is new data; daily partitions accumulate; a file a job failed on stays out of later runs (in-memory ports)."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.core import incoming_events as events
from lifecycle.core.policies import PolicyError, TrainingWindow
from lifecycle.core.state_records import Drop, TrainingRun
from lifecycle.handlers.azureml_runs import run_status_changed
from lifecycle.handlers.data import data_arrived
from lifecycle.handlers.reconcile import reconcile
from tests.fakes import complete_runs, fake_platform

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def blob(path: str, size: int = 100):
    return events.parse({
        "id": str(uuid.uuid4()), "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2026-11-29T08:00:00Z",
        "subject": f"/blobServices/default/containers/data/blobs/{path}", "dataVersion": "",
        "data": {"api": "PutBlob", "eTag": f"0x{uuid.uuid4().hex[:12].upper()}", "contentType": "text/csv",
                 "contentLength": size, "blobType": "BlockBlob", "sequencer": "01",
                 "url": f"http://127.0.0.1:10000/devstoreaccount1/data/{path}"}})


def finish(p, request, status="Completed"):
    p.jobs.finish(request.job_name, status)


def test_a_file_appended_to_a_folder_already_trained_on_starts_a_new_training_on_the_folder():
    p = fake_platform()
    data_arrived(blob("cancer/a.csv"), p, T0)
    data_arrived(blob("cancer/_SUCCESS", 0), p, T0)
    (first,) = p.jobs.submitted
    assert first.data_files == ("cancer/a.csv",)
    complete_runs(p)
    data_arrived(blob("cancer/b.csv"), p, T0 + timedelta(hours=1))
    assert len(p.jobs.submitted) == 1                       # appended: the folder waits for its quiet period
    reconcile(p, T0 + timedelta(hours=1, seconds=61))
    second = p.jobs.submitted[1]
    assert second.data_files == ("cancer/a.csv", "cancer/b.csv")     # the folder's data, not only the new file
    assert len(second.data_batches) == 1                             # why: the one new file
    reconcile(p, T0 + timedelta(hours=3))
    assert len(p.jobs.submitted) == 2                                # nothing new: nothing more


def test_daily_partitions_accumulate_under_a_window_of_all():
    p = fake_platform()
    for day in ("2026-11-29", "2026-11-30"):
        data_arrived(blob(f"sales/{day}/part-0000.csv"), p, T0)
        data_arrived(blob(f"sales/{day}/_SUCCESS", 0), p, T0)
        complete_runs(p)
    first, second = p.jobs.submitted
    assert first.data_files == ("sales/2026-11-29/part-0000.csv",)
    assert second.data_files == ("sales/2026-11-29/part-0000.csv", "sales/2026-11-30/part-0000.csv")
    run = p.state.get(TrainingRun, second.job_name)
    assert len(run.data_batches) == 2 and len(run.new_batches) == 1 and run.data_url == p.data.url_of("")


@pytest.mark.parametrize(("window", "expected"), [
    ("2 drops", ("d2/p.csv", "d3/p.csv")),
    ("1 day", ("d3/p.csv",)),
    ("all", ("d1/p.csv", "d2/p.csv", "d3/p.csv")),
])
def test_a_window_of_days_or_drops_reads_only_the_recent_data(window, expected):
    p = fake_platform(models_file=f"models: {{sales: {{target: y, data: {{root: sales/, window: {window}}}}}}}")
    for i, day in enumerate(("d1", "d2", "d3")):
        when = T0 + timedelta(days=2 * i)
        data_arrived(blob(f"sales/{day}/p.csv"), p, when)
        data_arrived(blob(f"sales/{day}/_SUCCESS", 0), p, when)
        complete_runs(p)
    request = p.jobs.submitted[-1]
    assert request.data == p.data.url_of("sales/") and request.data_files == expected   # relative to the root


def test_a_windows_text_is_checked():
    assert TrainingWindow.parse("30 days") == TrainingWindow("days", 30)
    assert TrainingWindow.parse("5 drops") == TrainingWindow("drops", 5) and str(TrainingWindow.parse("1 drop")) == \
        "1 drop"
    with pytest.raises(PolicyError, match="use 'all', '<N> days' or '<N> drops'"):
        TrainingWindow.parse("last week")


def test_a_file_a_job_failed_on_stays_out_of_later_training():
    p = fake_platform()
    data_arrived(blob("loans/bad/x.csv"), p, T0)
    data_arrived(blob("loans/bad/_SUCCESS", 0), p, T0)
    (bad,) = p.jobs.submitted
    p.jobs.finish(bad.job_name, "Failed", error="http://127.0.0.1:10000/devstoreaccount1/data/loans/bad/x.csv: "
                                                "no column 'default'")
    run_status_changed(events.parse({
        "id": "f1", "eventType": "Microsoft.MachineLearningServices.RunStatusChanged",
        "subject": f"experiments/e/runs/{bad.job_name}", "eventTime": "2026-11-29T08:05:00Z", "dataVersion": "2",
        "data": {"runId": bad.job_name, "experimentName": "mlops-training", "runStatus": "Failed", "runTags": {}}}),
        p, T0 + timedelta(minutes=5))
    assert next(d for d in p.state.list(Drop) if d.prefix == "loans/bad/").failed
    data_arrived(blob("loans/good/y.csv"), p, T0 + timedelta(hours=1))
    data_arrived(blob("loans/good/_SUCCESS", 0), p, T0 + timedelta(hours=1))
    assert p.jobs.submitted[-1].data_files == ("loans/good/y.csv",)
    complete_runs(p)
    data_arrived(blob("loans/bad/x.csv"), p, T0 + timedelta(hours=2))   # fixed and uploaded again: new data
    reconcile(p, T0 + timedelta(hours=3))
    assert p.jobs.submitted[-1].data_files == ("loans/bad/x.csv", "loans/good/y.csv")


def test_a_late_part_file_event_is_not_trained_twice():
    """The marker's event can come before a part file's: the job takes the folder as storage holds it, and the
    part's late event finds its file taken."""
    p = fake_platform()
    late = blob("loans/day1/part-0001.csv")
    p.data.store("loans/day1/part-0001.csv", etag=late.etag)
    p.data.stored[-1] = type(p.data.stored[-1])(**{**p.data.stored[-1].__dict__, "url": late.url})
    data_arrived(blob("loans/day1/part-0000.csv"), p, T0)
    data_arrived(blob("loans/day1/_SUCCESS", 0), p, T0)
    (request,) = p.jobs.submitted
    assert request.data_files == ("loans/day1/part-0000.csv", "loans/day1/part-0001.csv")
    data_arrived(late, p, T0 + timedelta(seconds=5))
    reconcile(p, T0 + timedelta(hours=1))
    assert len(p.jobs.submitted) == 1


def test_a_blob_is_the_same_batch_whatever_the_endpoint_and_the_etags_quotes():
    """A restarted local stack may serve the account on another port; events leave the eTag's quotes out,
    listings keep them. Neither makes an old file new data again."""
    from lifecycle.core.state_records import DataBatch
    from lifecycle.steps.data_batches import find_missed_data
    assert DataBatch.id_for("data", "a/x.csv", '"0x1"') == DataBatch.id_for("data", "a/x.csv", "0x1")
    p = fake_platform()
    data_arrived(blob("cancer/a.csv"), p, T0)
    data_arrived(blob("cancer/_SUCCESS", 0), p, T0)
    complete_runs(p)
    (recorded,) = [b for b in p.state.list(DataBatch) if not b.is_marker]
    p.data.store("cancer/a.csv", etag=f'"{recorded.etag}"', when=T0)       # listed at another port's URL
    assert p.data.stored[-1].url != recorded.url
    assert find_missed_data(p, T0 + timedelta(minutes=1)) == []
    reconcile(p, T0 + timedelta(hours=1))
    assert len(p.jobs.submitted) == 1
