"""`mlops drift` as a whole process: exit codes, and a pipe closed by its reader (`| head -1`), which must
neither lose the --html file nor change the exit code nor print a traceback."""
from __future__ import annotations

import shlex
import subprocess
import sys

import pytest
from sklearn.datasets import load_wine

COMMAND = [sys.executable, "-m", "mlops.cli", "drift"]


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    """Scikit-learn's wine table, and a copy with two features shifted far (drift by any rule)."""
    folder = tmp_path_factory.mktemp("wine")
    frame = load_wine(as_frame=True).frame
    shifted = frame.assign(alcohol=frame["alcohol"] + 2 * frame["alcohol"].std(), proline=frame["proline"] * 1.8)
    paths = {"ref": folder / "ref.csv", "drifted": folder / "drifted.parquet", "folder": folder}
    frame.to_csv(paths["ref"], index=False)
    shifted.to_parquet(paths["drifted"])
    return paths


def piped(args: list, reader: str) -> tuple[int, str, str]:
    """Run the command into `| reader` under bash: (the command's exit code, what the reader printed, stderr)."""
    line = f"set -o pipefail; {shlex.join([*COMMAND, *map(str, args)])} | {reader}; echo \"rc=${{PIPESTATUS[0]}}\""
    done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=120)
    out, _, code = done.stdout.rpartition("rc=")
    return int(code), out, done.stderr


@pytest.mark.parametrize("case, code", [("same", 0), ("drifted", 1)])
def test_html_is_written_when_the_reader_stops_after_one_line(wine, case, code):
    out = wine["folder"] / f"{case}.html"
    current = wine["ref"] if case == "same" else wine["drifted"]
    status, printed, stderr = piped([wine["ref"], current, "--target", "target", "--html", out], "head -1")
    assert status == code, stderr
    assert len(printed.splitlines()) == 1
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "Traceback" not in stderr and "Error" not in stderr


@pytest.mark.parametrize("output", [[], ["--json"]])
def test_a_pipe_closed_before_any_output_keeps_the_decisions_code(wine, output):
    """The reader is gone before the command writes (it exits at once): every write fails with EPIPE."""
    out = wine["folder"] / f"closed{len(output)}.html"
    status, _, stderr = piped([wine["ref"], wine["drifted"], "--target", "target", "--html", out, *output],
                              "(exit 0)")
    assert status == 1, stderr
    assert out.is_file()
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Exception ignored" not in stderr


def test_bad_input_exits_2_with_one_line(wine):
    """(0 and 1, the decision's codes, are the piped runs' above.)"""
    bad = subprocess.run([*COMMAND, str(wine["ref"]), str(wine["folder"] / "absent.csv")], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == f"error: {wine['folder'] / 'absent.csv'}: no such file or folder"
