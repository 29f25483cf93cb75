"""`mlops status`'s training compute in 80 columns: each job's figures on one line (a slowed one marked under it),
the totals with the month's estimate, the cluster's nodes and the advice; figures not measured show as '-', and a
model without jobs, or a status written before compute was collected, still renders."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from rich.console import Console

from mlops.status_view import render
from tests.test_cli_status_narrow import realistic

COMPUTE = json.loads((Path(__file__).parent / "dashboard" / "data" / "compute.json").read_text())


def text_of(compute: dict | None, width: int = 80) -> str:
    status = realistic()
    if compute is not None:
        status["app_models"][0]["compute"] = compute
    console = Console(record=True, width=width, force_terminal=False)
    render(console, status)
    return console.export_text()


def line_with(text: str, part: str) -> str:
    return next(line for line in text.splitlines() if part in line)


def test_each_job_on_one_line_with_its_figures():
    text = text_of(copy.deepcopy(COMPUTE))
    assert max(len(line) for line in text.splitlines()) <= 80
    lines = text.splitlines()
    assert "training compute" in text
    first = line_with(text, "train-data-1a2b3c ")        # the model left out, the hash cut to 6 digits
    assert first.split() == ["train-data-1a2b3c", "training:", "data", "1m06s", "4s", "25%", "240", "MiB",
                             "0.0054"]
    assert line_with(text, "monitor-20261201t110000").split()[1:] == ["monitoring", "19s", "1s", "21%",
                                                                               "120", "MiB", "0.0015"]
    slowed = line_with(text, "train-drift-9f8e7d")
    assert slowed.split() == ["train-drift-9f8e7d", "training:", "drift", "4m30s", "2m00s", "92%", "288", "MiB",
                              "0.022"]
    assert lines[lines.index(slowed) + 1].strip() == "slowed ×4.1 (usual 1m06s)"
    # newest last, as the view lists them
    assert text.index("train-data-1a2b3c") < text.index("monitor-20261201t110000") < text.index("train-drift-9f8e7d")
    assert line_with(text, "job  ").split() == ["job", "kind", "took", "queue", "CPU", "memory", "USD"]


def test_totals_month_nodes_and_advice():
    text = " ".join(text_of(copy.deepcopy(COMPUTE)).split())
    assert ("compute 3 jobs over 1 day: 5.9 job-minutes, 0.029 USD; at this rate 0.87 USD a month (177 job-minutes) "
            "at 0.293 USD per node-hour for Standard_DS3_v2") in text
    assert ("nodes of cpu-cluster over 1 day: 6 active, 10 idle node-minutes; idle 0.049 USD; peak 1 node; "
            "CPU 55%, memory 3%") in text
    assert "keep max nodes 2: at most 1 job ran at once" in text
    assert "keep min nodes 0: jobs come hours apart" in text and "keep idle seconds 120:" in text
    assert "VM size Standard_DS3_v2 → Standard_F8s_v2: training used 92% of the CPU" in text


def test_figures_not_measured_show_as_a_dash():
    compute = copy.deepcopy(COMPUTE)
    for job in compute["jobs"]:
        for key in ("queue_seconds", "duration_seconds", "cpu_percent", "memory_percent", "peak_memory_bytes", "cost",
                    "slowed", "started", "ended"):
            job[key] = None
    compute.update(nodes=None, advice=[], rate_per_node_hour=None, cores=None, memory_gb=None)
    compute["totals"] = {"jobs": 3, "job_minutes": None, "cost": None, "days": None, "month_job_minutes": None,
                         "month_cost": None}
    text = text_of(compute)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert line_with(text, "train-drift-9f8e7d").split() == ["train-drift-9f8e7d", "training:", "drift",
                                                                    "-", "-", "-", "-", "-"]
    assert "slowed" not in text and "nodes of" not in text
    assert "compute 3 jobs: - job-minutes; no price known for Standard_DS3_v2" in " ".join(text.split())


def test_no_job_yet_and_a_status_without_compute():
    compute = copy.deepcopy(COMPUTE)
    compute.update(jobs=[], nodes=None, advice=[],
                   totals={"jobs": 0, "job_minutes": 0.0, "cost": 0.0, "days": None, "month_job_minutes": None,
                           "month_cost": None})
    text = " ".join(text_of(compute).split())
    assert "training compute: no job has run yet" in text
    assert "compute 0 jobs: 0 job-minutes, 0 USD; at 0.293 USD per node-hour for Standard_DS3_v2" in text
    assert "compute" not in text_of(None).replace("computed", "")     # a status from before: no section at all


def test_only_the_latest_ten_jobs_with_the_earlier_counted():
    compute = copy.deepcopy(COMPUTE)
    template = compute["jobs"][0]
    compute["jobs"] = [{**template, "name": f"train-credit-data-{i:02d}{'0' * 14}", "duration_seconds": 60 + i}
                       for i in range(13)]
    text = text_of(compute)
    assert "(the last 10; 3 earlier: mlops status --json)" in " ".join(text.split())
    assert "train-data-020000" not in text and "train-data-030000" in text
    assert "train-data-120000" in text
