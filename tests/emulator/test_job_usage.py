"""The stand-in's measure of a job's process tree (emulator/aml/job_usage.py), on real processes."""
from __future__ import annotations

import asyncio
import os
import sys
import time

import psutil

from emulator.aml.job_usage import TreeMeter, combined

# A parent that holds ~80 MB and starts a child burning one second of CPU, then waits for it: the parent itself
# barely uses the CPU, so the CPU measured is the child's, counted after the child has exited.
PARENT = """
import subprocess, sys, time
held = bytearray(80 * 1024 * 1024)
for i in range(0, len(held), 4096):
    held[i] = 1                                  # touch every page: resident, not just reserved
burn = "import time\\nend = time.process_time() + 1.0\\nwhile time.process_time() < end: pass"
subprocess.run([sys.executable, "-c", burn], check=True)
time.sleep(0.8)
"""


def test_the_meter_counts_the_whole_tree_and_stops_when_the_process_ends():
    async def run():
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", PARENT)
        meter = TreeMeter(process.pid, interval=0.2)
        sampling = asyncio.create_task(meter.run())
        assert await process.wait() == 0
        await asyncio.wait_for(sampling, timeout=2)       # it ends by itself: the process is gone
        return meter.usage(), time.monotonic() - started, meter.samples

    usage, wall, samples = asyncio.run(run())
    assert samples >= 5
    assert 0.7 <= usage["cpu_seconds"] <= wall                           # the child's second (less its last 0.2 s)
    assert usage["peak_memory_bytes"] >= 80 * 1024 * 1024
    assert usage["memory_percent"] == round(usage["peak_memory_bytes"] / psutil.virtual_memory().total * 100, 2)
    # of the machine: all its cores are 100 %
    expected = usage["cpu_seconds"] / usage["wall_seconds"] / os.cpu_count() * 100
    assert abs(usage["cpu_percent"] - expected) < 0.1 and 0 < usage["cpu_percent"] <= 100
    assert usage["nodes"] == 1 and 1.5 < usage["wall_seconds"] <= wall


def test_a_process_that_is_gone_yields_no_samples_and_no_error():
    process = psutil.Popen([sys.executable, "-c", "pass"])
    process.wait()
    meter = TreeMeter(process.pid)
    asyncio.run(asyncio.wait_for(meter.run(), timeout=2))
    usage = meter.usage()
    assert (meter.samples, usage["cpu_seconds"], usage["peak_memory_bytes"]) == (0, 0, 0)


def test_a_pipeline_sums_its_steps_cpu_and_run_time_and_keeps_the_highest_memory_peak():
    steps = [{"cpu_seconds": 2.0, "peak_memory_bytes": 300, "wall_seconds": 4.0, "samples": 8},
             None,                                                   # a step that never ran
             {"cpu_seconds": 1.0, "peak_memory_bytes": 500, "wall_seconds": 2.0, "samples": 4}]
    total = combined(steps)
    assert (total["cpu_seconds"], total["peak_memory_bytes"], total["wall_seconds"], total["samples"]) == (
        3.0, 500, 6.0, 12)
    assert total["cpu_percent"] == round(3.0 / 6.0 / os.cpu_count() * 100, 2)
    assert combined([None]) is None
