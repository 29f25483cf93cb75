"""Which home every command shows (mlops/homes.py): --home (and --env), MLOPS_HOME, the stack running from
.mlops, else the one that ran last there (.mlops, or the demo's .mlops/demo/preprod and prod); a stopped
stack's status from the status.json it left; `mlops events` from its timeline, with its filters."""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emulator.home import StackHome
from emulator.timeline import Delivery
from mlops import cli
from mlops.events_view import BadFilter, parse_since
from mlops.homes import HomeError, read_snapshot, resolve

runner = CliRunner()
BLOB = "/blobServices/default/containers/data/blobs/loans/2026-11-01/part-0000.csv"


def record(time: str, event_type: str = "Microsoft.Storage.BlobCreated", function: str = "on_data_arrived",
           outcome: str = "delivered", subject: str = BLOB, source: str = "eventgrid", detail: str = "",
           attempt: int = 1) -> Delivery:
    return Delivery(event_id=f"id-{time}-{function}", event_type=event_type, subject=subject, function=function,
                    attempt=attempt, outcome=outcome, source=source, detail=detail, time=time)


def tick(time: str) -> Delivery:
    return record(time, "Timer", "reconcile_timer", subject="*/5 * * * * *", source="timer")


def stack_home(path: Path, records: list[Delivery], status: dict | None = None, written_at: str = "") -> Path:
    """A stopped stack's home as a run leaves it: its app settings, timeline and (optionally) status.json."""
    (path / "functions").mkdir(parents=True, exist_ok=True)
    (path / "functions" / "settings.json").write_text(json.dumps({"Values": {}}))
    (path / "timeline.jsonl").write_text("".join(json.dumps(asdict(r)) + "\n" for r in records))
    if status is not None:
        (path / "status.json").write_text(json.dumps({"written_at": written_at, "status": status}))
    return path


def status_of(name: str) -> dict:
    return {"model_name": name, "task": "classification", "training": "training/job.yml", "data_root": "data/x/",
            "training_window": "30 days", "models": [], "jobs": [], "endpoints": [], "rollout": None,
            "monitoring": [], "alerts": [], "rejections": [], "promotions": [], "lineage": []}


def age(path: Path, seconds_ago: float) -> None:
    """Make the stack at `path` look as if it last wrote `seconds_ago`."""
    moment = datetime.now(UTC).timestamp() - seconds_ago
    for trace in ("timeline.jsonl", "status.json", "functions/settings.json"):
        if (path / trace).exists():
            os.utime(path / trace, (moment, moment))


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project folder as the current directory, with no MLOPS_HOME: `.mlops` is the default home."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLOPS_HOME", raising=False)
    monkeypatch.delenv("MLOPS_PLATFORM", raising=False)
    return tmp_path


@pytest.fixture
def after_demo(project) -> Path:
    """What `make demo` leaves: two stopped stacks under .mlops/demo, each with its timeline and status.json."""
    demo = project / ".mlops" / "demo"
    stack_home(demo / "preprod", [record("2026-11-30T10:00:00.000Z"), tick("2026-11-30T10:00:05.000Z"),
                                  record("2026-11-30T10:01:00.000Z", "MLOps.ModelRegistered", "on_model_registered",
                                         subject="models/tabular-classifier/versions/1")],
               status_of("preprod-model"), "2026-11-30T10:05:00Z")
    stack_home(demo / "prod", [record("2026-11-30T10:02:00.000Z", "MLOps.ModelShared", "on_model_shared",
                                      subject="models/tabular-classifier/versions/1")],
               status_of("prod-model"), "2026-11-30T10:05:01Z")
    return demo


def test_after_the_demo_every_command_finds_its_home_and_says_which(after_demo):
    found = resolve()
    assert found.home.root == (after_demo / "preprod").resolve() and found.environment == "preprod"
    assert "the demo's preprod stack" in found.note and "stopped" in found.note and "--env prod" in found.note
    assert resolve(env="prod").home.root == (after_demo / "prod").resolve()

    status = runner.invoke(cli.app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["model_name"] == "preprod-model"
    assert "a snapshot of a stopped stack, written at 2026-11-30T10:05:00Z" in status.stderr
    assert "showing the demo's preprod stack at .mlops/demo/preprod" in status.stderr
    prod = runner.invoke(cli.app, ["status", "--env", "prod", "--json"])
    assert json.loads(prod.stdout)["model_name"] == "prod-model"

    events = json.loads(runner.invoke(cli.app, ["events", "--json"]).stdout)
    assert [r["function"] for r in events] == ["on_data_arrived", "on_model_registered"]      # the tick hidden
    shown = runner.invoke(cli.app, ["events"], env={"COLUMNS": "80"})
    assert shown.exit_code == 0 and "on_model_registered" in shown.stdout
    assert "1 timer tick hidden (--ticks shows them)" in shown.stdout
    assert "data/loans/2026-11-01/part-0000.csv" in shown.stdout          # relative to its container
    prod_events = json.loads(runner.invoke(cli.app, ["events", "--env", "prod", "--json"]).stdout)
    assert [r["function"] for r in prod_events] == ["on_model_shared"]


def test_home_and_mlops_home_win_and_a_home_named_exactly_needs_no_note(after_demo, project, monkeypatch):
    own = stack_home(project / "elsewhere", [record("2026-11-30T09:00:00.000Z", function="mine")],
                     status_of("mine"), "2026-11-30T09:00:00Z")
    named = resolve(own)
    assert named.home.root == own.resolve() and named.note == "" and named.environment is None
    events = runner.invoke(cli.app, ["events", "--home", str(own), "--json"])
    assert [r["function"] for r in json.loads(events.stdout)] == ["mine"] and "showing" not in events.stderr
    # --home naming a folder of both environments: preprod, or --env
    assert resolve(after_demo).home.root == (after_demo / "preprod").resolve()
    assert resolve(after_demo, "prod").home.root == (after_demo / "prod").resolve()
    monkeypatch.setenv("MLOPS_HOME", str(own))
    assert resolve().home.root == own.resolve()
    monkeypatch.setenv("MLOPS_HOME", str(project / ".mlops"))      # a root the demo ran under: searched the same
    assert resolve().home.root == (after_demo / "preprod").resolve()


def test_the_most_recent_stack_is_shown_when_none_runs(after_demo, project):
    own = stack_home(project / ".mlops", [record("2026-11-30T11:00:00.000Z", function="up")],
                     status_of("up-model"), "2026-11-30T11:00:00Z")
    age(after_demo / "preprod", 3600)
    age(after_demo / "prod", 3600)
    assert resolve().home.root == own.resolve() and resolve().note == ""      # `mlops up` ran after the demo
    age(own, 7200)
    assert resolve().home.root == (after_demo / "preprod").resolve()           # the demo ran after it
    assert resolve(env="prod").home.root == (after_demo / "prod").resolve()     # --env: environments only


def test_a_running_stack_comes_before_a_more_recent_stopped_one(after_demo, project):
    own = stack_home(project / ".mlops", [record("2026-11-30T11:00:00.000Z", function="up")])
    age(own, 7200)
    # a live pid in stack.json: this process's; StackInfo.read checks only that it lives
    info = {"pid": os.getpid(), "home": str(own), "storage_connection_string": "", "blob_endpoint": "",
            "queue_endpoint": "", "eventgrid_endpoint": "", "eventgrid_key": "", "eventgrid_topics": {},
            "functions_url": "", "functions_key": "", "functions_master_key": "", "functions": [], "aml_url": "",
            "aml_key": "", "endpoint_name": "e", "scoring_uri": "", "started_at": ""}
    (own / "stack.json").write_text(json.dumps(info))
    age(own, 7200)
    found = resolve()
    assert found.home.root == own.resolve() and found.running and found.note == ""


def test_nothing_ran_is_exit_1_with_how_to_start_and_a_bad_env_is_exit_2(project):
    with pytest.raises(HomeError, match="mlops up"):
        resolve()
    for command in (["status"], ["events"], ["info"], ["report"], ["rollout", "pause"]):
        result = runner.invoke(cli.app, command)
        assert result.exit_code == 1, (command, result.output)
        assert "no local stack has run from" in result.stderr and "mlops demo" in result.stderr
    bad = runner.invoke(cli.app, ["events", "--env", "staging"])
    assert bad.exit_code == 2 and "preprod or prod" in bad.stderr


def test_a_stopped_stack_without_status_json_says_so(project):
    stack_home(project / ".mlops", [record("2026-11-30T10:00:00.000Z")])
    result = runner.invoke(cli.app, ["status"])
    assert result.exit_code == 1 and "left no status.json" in result.stderr
    assert runner.invoke(cli.app, ["events", "--json"]).exit_code == 0          # its timeline is still there
    assert read_snapshot(StackHome(project / ".mlops")) is None


def test_a_stopped_apps_snapshot_shows_one_model_by_name(project):
    both = {"app_models": [status_of("loans"), status_of("prices")], "stage": None, "registry": None,
            "rejections": []}
    stack_home(project / ".mlops", [], both, "2026-11-30T10:05:00Z")
    one = runner.invoke(cli.app, ["status", "prices", "--json"])
    assert one.exit_code == 0 and json.loads(one.stdout)["model_name"] == "prices"
    unknown = runner.invoke(cli.app, ["status", "houses"])
    assert unknown.exit_code == 2 and "loans, prices" in unknown.stderr
    text = runner.invoke(cli.app, ["status"], env={"COLUMNS": "80"})
    assert text.exit_code == 0 and "loans (classification)" in text.stdout


# ---- mlops events: filters ------------------------------------------------------------------------------------

@pytest.fixture
def timeline(project) -> Path:
    return stack_home(project / ".mlops", [
        record("2026-11-30T10:00:00.000Z"),
        tick("2026-11-30T10:00:05.000Z"),
        record("2026-11-30T10:00:06.000Z", "Microsoft.MachineLearningServices.RunCompleted", "on_run_completed",
               subject="experiments/abc/runs/train-tabular-classifier-data-46d2931f4090b651"),
        record("2026-11-30T10:00:07.000Z", "MLOps.ModelRegistered", "on_model_registered", outcome="failed",
               detail="the function raised ValueError: boom", attempt=2),
        tick("2026-11-30T10:00:10.000Z"),
        record("2026-11-30T12:00:00.000Z", "MLOps.RolloutRolledBack", "", outcome="unmatched",
               detail="no subscription's filter matched"),
    ])


def events(*args: str) -> list[dict]:
    result = runner.invoke(cli.app, ["events", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_events_filters_combine_and_ticks_show_only_when_asked(timeline):
    assert len(events()) == 4 and len(events("--ticks")) == 6
    assert [r["function"] for r in events("--ticks", "--type", "timer")] == ["reconcile_timer"] * 2
    assert [r["function"] for r in events("--type", "mlops.")] == ["on_model_registered", ""]
    assert [r["function"] for r in events("--type", "runcompleted")] == ["on_run_completed"]
    assert [r["event_type"] for r in events("--function", "on_data")] == ["Microsoft.Storage.BlobCreated"]
    assert [r["outcome"] for r in events("--outcome", "failed,unmatched")] == ["failed", "unmatched"]
    assert [r["function"] for r in events("--since", "2026-11-30T11:00:00Z")] == [""]
    assert [r["function"] for r in events("--since", "2026-11-30 10:00:06", "--type", "MLOps")] == \
        ["on_model_registered", ""]
    assert len(events("--since", "1h")) == 0           # the records are older than an hour
    assert len(events("--limit", "0")) == 4 and [r["function"] for r in events("--limit", "1")] == [""]


def test_events_table_fits_80_columns_with_names_whole(timeline):
    result = runner.invoke(cli.app, ["events", "--ticks"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= 80 and "…" not in result.stdout
    assert "runs/train-tabular-classifier-data-46d2931f4090b651" in result.stdout      # not cut, nor folded
    assert "the function raised ValueError: boom" in result.stdout and "try 2" in result.stdout


def test_bad_event_filters_are_exit_2(timeline):
    for args, said in ((["--since", "10x"], "--since '10x'"), (["--since", "yesterday"], "duration"),
                       (["--outcome", "lost"], "--outcome lost"), (["--limit", "-1"], "--limit")):
        result = runner.invoke(cli.app, ["events", *args])
        assert result.exit_code == 2, (args, result.output)
        assert said in result.stderr or said in result.output


def test_since_reads_durations_and_iso_times():
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert parse_since("10m", now) == datetime(2026, 11, 30, 11, 50, tzinfo=UTC)
    assert parse_since("2h", now) == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    assert parse_since("1d", now) == datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert parse_since("1h30m", now) == datetime(2026, 11, 30, 10, 30, tzinfo=UTC)
    assert parse_since("90s", now) == datetime(2026, 11, 30, 11, 58, 30, tzinfo=UTC)
    assert parse_since("0m", now) == now
    assert parse_since("2026-11-30T08:00:00Z", now) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert parse_since("2026-11-30T09:00+01:00", now) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert parse_since("2026-11-30", now) == datetime(2026, 11, 30, tzinfo=UTC)        # UTC without an offset
    for bad in ("", "10", "m", "-5m", "soon", "10 minutes ago"):
        with pytest.raises(BadFilter):
            parse_since(bad, now)


def test_a_named_home_where_nothing_ran_is_taken_as_it_is(project):
    empty = project / "empty"
    empty.mkdir()
    assert resolve(empty).home.root == empty.resolve()
    events = runner.invoke(cli.app, ["events", "--home", str(empty)])
    assert events.exit_code == 1 and "no timeline at" in events.stderr
    status = runner.invoke(cli.app, ["status", "--home", str(empty)])
    assert status.exit_code == 1 and "left no status.json" in status.stderr
    with pytest.raises(HomeError, match="no preprod and prod stacks"):
        resolve(empty, "prod")
