"""`mlops simulate` as a person and a program run it: --json alone on stdout, --html, the table in 80 columns, bad
input refused with exit 2 and one line, the same numbers for the same seed (in one process or several), and a
folder of dated files. A simulation costs seconds per policy, so the runs are few, short, and shared by the tests
that read them (`slow`); the refusals simulate nothing and stay in `make unit`."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mlops import cli

COMMAND = [sys.executable, "-m", "mlops.cli", "simulate"]
# a short generated history: 7 measured days after 5 of warm-up, a sudden drift on the 3rd of them
SHORT = ["--days", "12", "--drifts", "sudden@8", "--rows-per-day", "300", "--warmup-days", "5", "--seed", "3"]
POLICIES = ["--policy", "never", "--policy", "on-drift"]
WALL_CLOCK = {"wall_seconds", "training_seconds", "monitoring_seconds"}
# runner._run limits each run to one thread with threadpool_limits(1) before training has loaded OpenMP (sklearn is
# imported lazily), so the limit misses it: the first fit in a process runs OpenMP's threads, seconds to a minute
# on a busy machine. Until the runner loads it first, the tests load it before a run (and tell the processes).
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
runner = CliRunner()


def simulate(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    """The command as a process of its own (a terminal's width from COLUMNS in env)."""
    return subprocess.run([*COMMAND, *map(str, args)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})


def in_process(*args, env: dict | None = None):
    """The command through typer's runner, in this process (a simulation after the first costs far less here: the
    first pays for the imports and the first model's fit)."""
    return runner.invoke(cli.app, ["simulate", *map(str, args)], env=env)


class Logged(logging.Handler):
    """The log records at WARNING or above while it is attached to the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> Logged:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger().removeHandler(self)


def numbers(document: dict) -> dict:
    """The JSON result without what the wall clock measured."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in WALL_CLOCK}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(document)


# ---- --json and --html: one run, in two processes --------------------------------------------------------------

@pytest.fixture(scope="module")
def json_run(tmp_path_factory):
    html = tmp_path_factory.mktemp("simulate") / "report" / "policies.html"
    # TTY_COMPATIBLE: rich draws its progress as on a terminal (it draws none into a pipe)
    done = simulate(*SHORT, *POLICIES, "--processes", "2", "--json", "--html", html,
                    env={"TTY_COMPATIBLE": "1", **ONE_THREAD})
    return done, html


@pytest.mark.slow
def test_json_is_the_only_thing_on_stdout(json_run):
    done, _ = json_run
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)                # one document, nothing before or after it
    assert done.stdout.count("\n") == 1 and done.stdout.endswith("}\n")
    assert [o["run"]["name"] for o in document["outcomes"]] == ["never", "on-drift"]
    assert document["days"] == 7 and document["warmup_days"] == 5 and document["seed"] == 3
    assert document["start"] == "2026-01-06" and document["metric"] == "accuracy"
    # the drift at day 8 of the history is day 3 of the measured days
    assert [(d["day"], d["ends"], d["kind"]) for d in document["drifts"]] == [(3, 4, "sudden")]
    assert document["recommendation"]["policy"] in ("never", "on-drift") and document["recommendation"]["reason"]
    for outcome in document["outcomes"]:
        run = outcome["run"]
        assert len(run["daily"]) == 7 and all(day["labelled"] == 300 for day in run["daily"])
        assert 0.5 < outcome["mean_metric"] <= 1
        assert outcome["alarms"] is not None and len(outcome["recoveries"]) == 1
    never, on_drift = (o["run"] for o in document["outcomes"])
    assert never["settings"]["RETRAIN_ON"] == "never" and never["trainings"] == 0
    assert on_drift["settings"]["RETRAIN_ON"] == "drift"


@pytest.mark.slow
def test_json_progress_and_messages_go_to_stderr(json_run):
    done, html = json_run
    assert "{" not in done.stderr
    assert "never" in done.stderr and "on-drift" in done.stderr and "7/7" in done.stderr   # the bars, at the end
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", done.stderr)       # rich's colours and cursor moves
    assert plain.rstrip().splitlines()[-1] == f"report: {html}"
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_html_writes_the_page_with_each_policy(json_run):
    done, html = json_run
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "never" in page and "on-drift" in page
    assert "Recommended: " in page


# ---- determinism -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def one_process():
    """The json run's policies, seed and history, simulated one after the other in this process."""
    import sklearn.ensemble  # noqa: F401  (OpenMP loaded before the runner's limit: see ONE_THREAD)
    result = in_process(*SHORT, *POLICIES, "--processes", "1", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_one_process_and_two_give_the_same_outcomes(json_run, one_process):
    done, _ = json_run
    assert numbers(one_process) == numbers(json.loads(done.stdout))


@pytest.mark.slow
def test_the_same_command_and_seed_give_the_same_numbers(one_process):
    again = in_process(*SHORT, *POLICIES, "--processes", "1", "--json")
    assert again.exit_code == 0, again.stderr
    assert numbers(json.loads(again.stdout)) == numbers(one_process)


# ---- a folder of dated files, and the table in 80 columns ------------------------------------------------------

LONG_NAME = "frozen-first-model"          # as long as a name gets without folding (report_text.NAME_FITS)


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """16 days of a generated table as dated CSV files (no known drifts), simulated by a policy from a file,
    printed for a terminal 80 columns wide."""
    from mlops.simulation.histories import generate
    root = tmp_path_factory.mktemp("folder")
    data = root / "days"
    data.mkdir()
    history = generate("sea", days=16, drifts="gradual@9-12", rows_per_day=300, seed=5)
    for day, frame in enumerate(history.days):
        frame.to_csv(data / f"2026-01-{day + 1:02d}.csv", index=False)
    (data / "_SUCCESS").write_text("")
    policies = root / "policies.yaml"
    policies.write_text(f"policies:\n  {LONG_NAME}:\n    description: the first model, kept\n"
                        "    settings: {RETRAIN_ON: never}\n", encoding="utf-8")
    with Logged() as logged:
        result = in_process("--data", data, "--target", "label", "--policies", policies, "--policy", LONG_NAME,
                            "--warmup-days", "5", "--processes", "1", env={"COLUMNS": "80"})
    return result, logged.records


@pytest.mark.slow
def test_a_folder_of_dated_files_is_replayed_with_its_drifts_unknown(folder_run):
    result, _ = folder_run
    assert result.exit_code == 0, result.output
    out = result.stdout
    words = " ".join(out.split())
    assert words.startswith("16 days of data from days (4,800 rows), 2026-01-01 to 2026-01-16: 11 days from "
                            "2026-01-06 after 5 days of warm-up")
    assert "drifts not known (a folder of data): recovery and alarms are not judged" in words
    row = next(line for line in out.splitlines() if line.startswith(LONG_NAME))
    assert row.split()[-3:-1] == ["—", "—"]           # recovery and false/missed: not known
    assert f"recommended: {LONG_NAME}" in words


@pytest.mark.slow
def test_one_process_says_nothing_but_the_result(folder_run):
    """No progress into a pipe, and no handler's log line (the runner's processes keep theirs to themselves too)."""
    result, records = folder_run
    assert result.stderr == ""
    assert [r.getMessage() for r in records] == []


@pytest.mark.slow
def test_the_table_fits_80_columns_and_names_each_policy_whole(folder_run):
    lines = folder_run[0].stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(line for line in lines if len(line) > 80)
    assert sum(line.startswith(f"{LONG_NAME} ") for line in lines) == 1
    assert lines[0].strip(), "the output starts with a blank line"


# ---- bad input: exit 2, one line, nothing simulated ------------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    def write(name: str, text: str):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path
    return write


QUICK = ["--days", "10", "--drifts", "none", "--rows-per-day", "50", "--warmup-days", "5", "--processes", "1"]


@pytest.mark.parametrize("args, says", [
    (["--policy", "monthly"], "error: no policy named monthly: the policies are never, weekly, daily, on-drift, "
                              "on-performance"),
    (["--drifts", "sudden@x"], "error: drift 'sudden@x': a sudden drift takes one day (e.g. sudden@120)"),
    (["--drifts", "sudden@10"], "error: drift 'sudden@10': day 10 is outside 1-9"),
    (["--drifts", "abrupt@4"], "error: drift 'abrupt@4': unknown kind 'abrupt'"),
    (["--set", "FOO=1"], "error: --set: FOO is not an app setting the function app reads"),
    (["--set", "GATE_MARGN=0.1"], "(did you mean GATE_MARGIN?)"),
    (["--set", "GATE_MARGIN=abc", "--policy", "never"], "error: policy 'never': app setting GATE_MARGIN is 'abc'"),
    (["--set", "MONITOR_SCHEDULE=hourly"], "app setting MONITOR_SCHEDULE is 'hourly': six NCRONTAB fields"),
    (["--warmup-days", "10"], "error: the history has 10 day(s): more than the 10 warm-up day(s) are needed"),
    (["--warmup-days", "30"], "more than the 30 warm-up day(s) are needed (--warmup-days)"),
    (["--generate", "circles"], "error: --generate 'circles': use sea or hyperplane"),
])
def test_bad_input_exits_2_with_one_error_line(args, says):
    result = in_process(*QUICK, *args)
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr


@pytest.mark.parametrize("settings, says", [
    ("{RETRAIN_ONN: drift}", "policy 'mine': RETRAIN_ONN is not an app setting the function app reads "
                             "(did you mean RETRAIN_ON?)"),
    ("{RETRAIN_ON: weekly}", "error: policy 'mine': app setting RETRAIN_ON is 'weekly'"),
    ('{RETRAIN_ON: schedule, RETRAIN_SCHEDULE: "every day"}',
     "error: policy 'mine': app setting RETRAIN_SCHEDULE is 'every day': six NCRONTAB fields"),
    ('{RETRAIN_ON: schedule, RETRAIN_SCHEDULE: "0 2 * * *"}', "app setting RETRAIN_SCHEDULE is '0 2 * * *'"),
    ("{ROLLOUT_STEPS: [50, 200]}", "error: policy 'mine': "),
])
def test_a_policy_the_app_refuses_exits_2_naming_it(files, settings, says):
    policies = files("policies.yaml", f"policies:\n  mine:\n    settings: {settings}\n")
    result = in_process(*QUICK, "--policies", policies, "--policy", "mine", "--json")
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr


def test_a_policies_file_that_cannot_be_used_exits_2_naming_it(files, tmp_path):
    bad = files("bad.yaml", "policies:\n  p: [unclosed\n")
    for path, says in ((bad, f"error: {bad} is not valid YAML"),
                       (tmp_path / "absent.yaml", f"error: cannot read the policies file {tmp_path / 'absent.yaml'}")):
        result = in_process(*QUICK, "--policies", path)
        assert result.exit_code == 2 and result.stdout == "", result.output
        assert result.stderr.startswith(says), result.stderr


def test_data_needs_a_target_and_dated_files(files, tmp_path):
    files("days/notes.txt", "not data")
    files("days/.hidden/2026-01-01.csv", "a,b\n1,2\n")
    for args, says in (
            (["--data", tmp_path / "days"], "error: --data needs --target, the label column"),
            (["--data", tmp_path / "days", "--target", "y"],
             f"error: {tmp_path / 'days'}: no dated data files found"),
            (["--data", tmp_path / "absent", "--target", "y"], f"error: {tmp_path / 'absent'}: not a folder"),
            (["--data", tmp_path / "days", "--target", "y", "--task", "ranking"],
             "error: task 'ranking' is not one of classification, regression")):
        result = in_process(*QUICK, *args)
        assert result.exit_code == 2 and result.stdout == "", result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(says), result.stderr


def test_a_zero_or_negative_count_is_refused_by_the_options():
    for args in (["--days", "1"], ["--rows-per-day", "0"], ["--warmup-days", "0"], ["--processes", "-1"]):
        result = in_process(*args)
        assert result.exit_code == 2 and result.stdout == "", (args, result.output)


def test_an_html_file_that_cannot_be_written_is_refused_before_simulating(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    for html, says in ((tmp_path, "it is a folder"), (tmp_path / "taken" / "report.html", "")):
        result = in_process(*QUICK, "--policy", "never", "--html", html)
        assert result.exit_code == 2 and result.stdout == "", result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: --html {html}: cannot write it") and says in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
