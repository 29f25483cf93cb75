"""`mlops drift` on real tables (scikit-learn's breast cancer and wine) in every format it reads, on both sides:
the traps of issue 14 (formats refused or crashing, empty inputs, columns dropped without a word, thresholds
that did not reach it, the deciding rule not shown)."""
from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from typer.testing import CliRunner

from mlops.cli import app

runner = CliRunner()
TARGET = "target"


def drift(*args, env: dict | None = None):
    return runner.invoke(app, ["drift", *map(str, args)], env=env)


def one_error_line(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def write(frame: pd.DataFrame, path, kind: str) -> None:
    """frame as the format `kind` (the file name carries the suffix)."""
    rows = frame.to_dict(orient="records")
    if kind in ("csv", "csv.gz"):
        frame.to_csv(path, index=False)
    elif kind in ("parquet", "pq"):
        frame.to_parquet(path)
    elif kind == "json array":
        path.write_text(json.dumps(rows))
    elif kind in ("json lines", "jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "jsonl.gz":
        with gzip.open(path, "wt") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in rows)
    elif kind == "collector":              # the data collector's lines: {"data": [rows]}, a few rows a line
        path.write_text("".join(json.dumps({"data": rows[i:i + 7]}) + "\n" for i in range(0, len(rows), 7)))
    else:
        raise AssertionError(kind)


FORMATS = {"csv": "t.csv", "csv.gz": "t.csv.gz", "parquet": "t.parquet", "pq": "t.pq", "json array": "t.json",
           "json lines": "t.json", "jsonl": "t.jsonl", "jsonl.gz": "t.jsonl.gz", "collector": "t.jsonl"}


@pytest.fixture(scope="module")
def cancer(tmp_path_factory):
    """The breast cancer table's two halves (30 numeric features and the 0/1 target) as CSV."""
    folder = tmp_path_factory.mktemp("cancer")
    frame = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    half = len(frame) // 2
    paths = {"ref": folder / "ref.csv", "cur": folder / "cur.csv", "folder": folder}
    frame.iloc[:half].to_csv(paths["ref"], index=False)
    frame.iloc[half:].to_csv(paths["cur"], index=False)
    return paths


def as_json(result) -> dict:
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("kind", FORMATS)
def test_every_format_reads_as_current_and_as_reference(cancer, tmp_path, kind):
    cur = pd.read_csv(cancer["cur"])
    path = tmp_path / FORMATS[kind]
    write(cur, path, kind)
    as_current = as_json(drift(cancer["ref"], path, "--json", "--target", TARGET))
    assert as_current["rows"] == len(cur) and len(as_current["features"]) == 30
    assert as_current["warnings"] == []                      # the same columns: nothing to say
    as_reference = as_json(drift(path, cancer["ref"], "--json", "--target", TARGET))
    assert as_reference["rows"] == len(pd.read_csv(cancer["ref"])) and len(as_reference["features"]) == 30


def test_folders_recursive_mixed_formats_and_globs(cancer, tmp_path):
    cur = pd.read_csv(cancer["cur"])
    (tmp_path / "cur" / "day=2").mkdir(parents=True)
    write(cur.iloc[:100], tmp_path / "cur" / "a.csv.gz", "csv.gz")
    write(cur.iloc[100:200], tmp_path / "cur" / "day=2" / "b.parquet", "parquet")
    write(cur.iloc[200:], tmp_path / "cur" / "day=2" / "c.jsonl", "collector")
    (tmp_path / "cur" / "_SUCCESS").write_text("")          # markers and other files are skipped
    (tmp_path / "cur" / "README.txt").write_text("notes")
    report = as_json(drift(cancer["ref"], tmp_path / "cur", "--json", "--target", TARGET))
    assert report["rows"] == len(cur)
    as_reference = as_json(drift(tmp_path / "cur", cancer["ref"], "--json", "--target", TARGET))
    assert len(as_reference["features"]) == 30
    pattern = str(tmp_path / "cur" / "day=2" / "*.parquet")  # quoted by the shell: the command expands it
    assert as_json(drift(cancer["ref"], pattern, "--json", "--target", TARGET))["rows"] == 100


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file or folder"),
    ("glob", "no data file matches"),
    ("empty folder", "no data files in this folder"),
    ("header only", "no rows"),
    ("empty array", "no rows"),
    ("zero bytes", "empty"),
    ("array of numbers", "a JSON array of objects"),
    ("bad line", "line 2 is not JSON"),
    ("format", "unknown format '.txt'"),
])
def test_bad_or_empty_input_on_either_side_exits_2(cancer, tmp_path, case, message):
    bad = {"missing": tmp_path / "absent", "glob": tmp_path / "none-*.csv", "empty folder": tmp_path / "nothing",
           "header only": tmp_path / "header.csv", "empty array": tmp_path / "empty.json",
           "zero bytes": tmp_path / "zero.csv", "array of numbers": tmp_path / "numbers.json",
           "bad line": tmp_path / "bad.jsonl", "format": tmp_path / "data.txt"}[case]
    (tmp_path / "nothing").mkdir()
    pd.read_csv(cancer["ref"]).head(0).to_csv(tmp_path / "header.csv", index=False)
    (tmp_path / "empty.json").write_text("[]")
    (tmp_path / "zero.csv").write_text("")
    (tmp_path / "numbers.json").write_text("[1, 2, 3]")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    (tmp_path / "data.txt").write_text("a,b\n1,2\n")
    assert message in one_error_line(drift(bad, cancer["cur"]))      # as the reference
    assert message in one_error_line(drift(cancer["ref"], bad))      # as the current data


def test_columns_on_one_side_are_named_and_can_be_required(cancer, tmp_path):
    renamed = pd.read_csv(cancer["cur"]).rename(columns={"mean radius": "radius_mean"}).drop(columns="worst area")
    path = tmp_path / "renamed.parquet"
    renamed.to_parquet(path)
    result = drift(cancer["ref"], path, "--target", TARGET)
    assert result.exit_code in (0, 1)
    assert "only in the reference, not compared: mean radius, worst area" in result.stderr
    assert "only in the current data, not compared: radius_mean" in result.stderr
    report = as_json(drift(cancer["ref"], path, "--target", TARGET, "--json"))
    assert report["columns"] == {"only_reference": ["mean radius", "worst area"], "only_current": ["radius_mean"]}
    assert len(report["warnings"]) == 2 and len(report["features"]) == 28
    line = one_error_line(drift(cancer["ref"], path, "--target", TARGET, "--require-same-columns"))
    assert "columns differ" in line and "mean radius, worst area" in line and "radius_mean" in line


def test_the_target_missing_from_production_data_is_no_warning(cancer, tmp_path):
    path = tmp_path / "unlabelled.csv"
    pd.read_csv(cancer["cur"]).drop(columns=TARGET).to_csv(path, index=False)
    result = drift(cancer["ref"], path, "--target", TARGET, "--require-same-columns")
    assert result.exit_code in (0, 1) and result.stderr == ""


def test_thresholds_from_the_setting_and_the_options(cancer):
    def limits(*options, env=None):
        report = as_json(drift(cancer["ref"], cancer["cur"], "--json", "--target", TARGET, *options, env=env))
        return report["thresholds"], report["features"]["mean radius"]["thresholds"]
    default, _ = limits()
    overall, used = limits(env={"DRIFT_THRESHOLDS": "psi=0.4,normalized_wasserstein=0.3"})
    assert overall["psi"] == 0.4 and used["psi"] == 0.4 and used["normalized_wasserstein"] == 0.3
    overall, used = limits("--threshold", "psi=0.33", env={"DRIFT_THRESHOLDS": "psi=0.4,jensen_shannon=0.2"})
    assert used["psi"] == 0.33 and overall["jensen_shannon"] == 0.2   # the option wins, the rest of the setting stays
    assert default["psi"] != 0.33


@pytest.mark.parametrize("options, env, message", [
    (["--threshold", "pssi=0.2"], None, "unknown metric 'pssi' (did you mean 'psi'?); known: "),
    (["--threshold", "psi"], None, "--threshold 'psi': use metric=number"),
    (["--threshold", "psi=-1"], None, "a threshold is a number >= 0"),
    ([], {"DRIFT_THRESHOLDS": "psi=high"}, "DRIFT_THRESHOLDS 'psi=high'"),
    ([], {"DRIFT_THRESHOLDS": "wasserstein=0.1"}, "DRIFT_THRESHOLDS names an unknown metric 'wasserstein'"),
])
def test_bad_thresholds_exit_2(cancer, options, env, message):
    assert message in one_error_line(drift(cancer["ref"], cancer["cur"], *options, env=env))


def test_the_table_shows_the_deciding_rule_and_json_has_the_decision(cancer):
    report = as_json(drift(cancer["ref"], cancer["cur"], "--json", "--target", TARGET))
    decision = report["decision"]
    assert decision["rule"] and decision["drifted"] == report["drifted"]
    table = drift(cancer["ref"], cancer["cur"], "--target", TARGET)
    assert f"rule: {decision['rule']}" in " ".join(table.stdout.split())


def test_the_table_has_the_adjusted_p_value_when_the_report_does(cancer):
    from rich.console import Console

    from mlops.drift_command import drift_table, run_drift
    run = run_drift(cancer["ref"], cancer["cur"], TARGET)
    for feature in run.report.features.values():
        feature.pvalue_adjusted = 0.5                      # as monitoring.drift sets it (the BH-adjusted p)
    console = Console(record=True, width=200)
    console.print(drift_table(run.report))
    text = console.export_text()
    assert "adj. p" in text and "0.5" in text


def test_help_documents_the_exit_codes():
    result = runner.invoke(app, ["drift", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    text = " ".join(result.stdout.split())
    assert "0 no drift, 1 drift, 2 bad input" in text
    assert "--threshold" in text and "--require-same-columns" in text
