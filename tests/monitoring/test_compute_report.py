"""The monitoring report's "Training compute" section: each job's duration over time per kind (slowed ones ringed,
with their factor) above its CPU and memory, drawn as inline SVG with its text kept as text; the jobs' figures,
totals, month estimate, the cluster's nodes and the advice as a list; figures not measured, no jobs, or no compute
at all never fail the page. And `mlops report` takes the compute from the status the stack left."""
from __future__ import annotations

import copy
import json
import re
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emulator.home import StackHome
from lifecycle.core.state_records import MonitorRun
from mlops import report_commands
from mlops.cli import app
from monitoring.report import render_report
from tests.fakes import fake_platform

COMPUTE = json.loads((Path(__file__).resolve().parents[1] / "dashboard" / "data" / "compute.json").read_text())
WINDOW = {"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z", "model": "credit:2", "rows": 10}


def compute_section(page: str) -> str:
    found = re.search(r'<section id="training-compute">.*?</section>', page, re.S)
    assert found, "no Training compute section"
    return found.group(0)


def test_the_section_plots_durations_per_kind_with_the_slowed_job_marked():
    page = render_report({}, [{"window": WINDOW}], title="Monitoring of credit:2", compute=copy.deepcopy(COMPUTE))
    assert '<a href="#training-compute">Training compute</a>' in page          # in the table of contents
    section = compute_section(page)
    svg = re.search(r"<svg.*?</svg>", section, re.S)
    assert svg, "no plot"
    plot = svg.group(0)
    for text in ("minutes", "% of a node", "training", "monitoring", "slowed", "×4.1", "CPU (mean)", "memory (peak)"):
        assert f">{text}<" in plot, text                                     # text kept as text
    # one stem per job of each kind: two training jobs, one monitoring pass
    assert len(re.findall(r'<g id="r\d+-LineCollection_\d+"', plot)) == 2
    rows = re.findall(r"<tr>(.*?)</tr>", section, re.S)[1:]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    assert [c[0] for c in cells] == ["train-data-1a2b3c", "monitor-20261201t110000",
                                     "train-drift-9f8e7d"]
    assert cells[2][4:] == ["4m30s", "2m00s", "92%", "4%", "288 MiB", "0.022 USD",
                            '<span class="bad">slowed ×4.1 (usual 1m06s)</span>']
    assert cells[0][-1] == "–"
    text = " ".join(re.sub(r"<[^>]+>", " ", section).split())
    assert ("3 jobs over 1 day: 5.9 job-minutes, 0.029 USD; at this rate 0.87 USD a month (177 job-minutes) at "
            "0.293 USD per node-hour for Standard_DS3_v2") in text
    assert "nodes of cpu-cluster over 1 day: 6 active, 10 idle node-minutes; idle 0.049 USD" in text
    advice = re.search(r"<h3>Cluster settings</h3><ul>(.*?)</ul>", section, re.S)
    assert advice, "no advice list"
    items = re.findall(r"<li>(.*?)</li>", advice.group(1))
    assert len(items) == 4
    assert items[0].startswith("keep max nodes 2: at most 1 job ran at once")
    assert items[3].startswith("VM size Standard_DS3_v2 → Standard_F8s_v2: training used 92% of the CPU")


def test_figures_not_measured_no_jobs_and_no_compute():
    compute = copy.deepcopy(COMPUTE)
    for job in compute["jobs"]:
        job.update(duration_seconds=None, queue_seconds=None, cpu_percent=None, memory_percent=None, cost=None,
                   peak_memory_bytes=None, slowed=None, started=None)
    compute.update(nodes=None, advice=[], rate_per_node_hour=None)
    section = compute_section(render_report({}, [], title="t", compute=compute))
    assert "<svg" not in section                            # nothing measured: nothing to plot
    assert section.count("<td>train-drift-9f8e7d</td>") == 1 and "nodes of" not in section
    assert "no price known for Standard_DS3_v2" in section and "Cluster settings" not in section

    compute.update(jobs=[], totals={"jobs": 0, "job_minutes": 0.0})
    assert "No training or monitoring job has run yet." in compute_section(render_report({}, [], title="t",
                                                                                           compute=compute))
    assert "training-compute" not in render_report({}, [], title="t")


def test_job_names_and_reasons_are_escaped():
    compute = copy.deepcopy(COMPUTE)
    compute["jobs"][0]["name"] = "train-<b>x</b>"
    compute["advice"][0]["reason"] = "<script>alert(1)</script>"
    section = compute_section(render_report({}, [{"window": WINDOW}], title="t", compute=compute))
    assert "<b>x</b>" not in section and "train-&lt;b&gt;x&lt;/b&gt;" in section
    assert "<script>" not in section and "&lt;script&gt;" in section


@pytest.fixture
def stopped_stack(monkeypatch, tmp_path) -> StackHome:
    """A stack that stopped: its monitoring records (stack_records, as `mlops report` reads them) and the status it
    left in <home>/status.json, with the model's training compute."""
    p = fake_platform()
    p.state.create(MonitorRun("credit-1", "credit", "blue", "credit:2", WINDOW["start"], WINDOW["end"],
                              {"window": WINDOW}, status="Completed"))

    @contextmanager
    def opened(home):
        yield p.state, None
    monkeypatch.setattr(report_commands, "stack_records", opened)
    home = StackHome(tmp_path / "home")
    home.create()
    status = {"app_models": [{"model_name": "other", "compute": None},
                             {"model_name": "credit", "compute": copy.deepcopy(COMPUTE)}]}
    home.path("status.json").write_text(json.dumps({"written_at": "2026-12-01T13:00:00Z", "status": status}))
    return home


def test_mlops_report_shows_the_compute_the_stopped_stack_left(stopped_stack, tmp_path):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "--home", str(stopped_stack.root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    section = compute_section(out.read_text(encoding="utf-8"))
    assert "train-drift-9f8e7d" in section and "<svg" in section


def test_a_stack_that_left_no_status_gives_a_report_without_compute(stopped_stack, tmp_path):
    stopped_stack.path("status.json").unlink()
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "--home", str(stopped_stack.root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "training-compute" not in out.read_text(encoding="utf-8")
