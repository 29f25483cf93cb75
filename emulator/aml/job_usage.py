"""What a local job's process used while it ran, measured as Azure ML's node metrics would show it: its process
tree (the job's process and everything it started) sampled with psutil every ~0.5 s.

    meter = TreeMeter(process.pid)
    sampling = asyncio.create_task(meter.run())        # ends by itself once the process has exited
    code = await process.wait()
    usage = meter.usage()        # {"cpu_seconds", "cpu_percent", "peak_memory_bytes", "memory_percent", ...}

CPU seconds count every process of the tree, those that exited included, with the CPU time last seen for each:
the last half second of a process (and a child that lived less than that) can go uncounted. Memory is the peak
of the tree's summed resident memory over the samples (shared pages count in each process, as `ps` shows them).
Percentages are of this machine, the job's one node: all its cores are 100 % CPU."""
from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

log = logging.getLogger("emulator.aml.job_usage")
INTERVAL = 0.5                     # seconds between samples: one sample costs well under a millisecond


class TreeMeter:
    def __init__(self, pid: int, interval: float = INTERVAL) -> None:
        self.pid = pid
        self.interval = interval
        self.samples = 0
        self.peak_rss = 0
        self._cpu: dict[tuple[int, float], float] = {}      # (pid, create time) -> last CPU seconds seen
        self._started = time.monotonic()
        self._ended: float | None = None

    def sample(self) -> bool:
        """Read the tree once; False once the job's process is gone (or a zombie: it has ended)."""
        import psutil
        try:
            root = psutil.Process(self.pid)
            if root.status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.Error:
            return False
        rss = 0
        for pid in (self.pid, *_descendants(self.pid)):
            try:
                process = root if pid == self.pid else psutil.Process(pid)
                with process.oneshot():
                    key = (pid, process.create_time())      # a reused pid is another process
                    times = process.cpu_times()
                    memory = process.memory_info()
            except psutil.Error:                # exited between listing and reading: its last sample stands
                continue
            self._cpu[key] = times.user + times.system
            rss += memory.rss
        self.peak_rss = max(self.peak_rss, rss)
        self.samples += 1
        return True

    async def run(self) -> None:
        """Sample until the process ends. A sampling failure stops the sampling, never the job."""
        try:
            while self.sample():
                await asyncio.sleep(self.interval)
        except Exception:
            log.warning("sampling process %s failed: its usage stays as last measured", self.pid, exc_info=True)
        finally:
            self._ended = time.monotonic()

    def usage(self) -> dict:
        """The tree's figures so far (job.json's "usage")."""
        import psutil
        wall = (self._ended or time.monotonic()) - self._started
        cpu = sum(self._cpu.values())
        return usage_record(cpu, self.peak_rss, wall, os.cpu_count() or 1, psutil.virtual_memory().total,
                            self.samples)


def usage_record(cpu_seconds: float, peak_memory_bytes: int, wall_seconds: float, cpus: int, memory_total: int,
                 samples: int) -> dict:
    cpu_percent = cpu_seconds / wall_seconds / cpus * 100 if wall_seconds > 0 else None
    return {"cpu_seconds": round(cpu_seconds, 3),
            "cpu_percent": None if cpu_percent is None else round(min(cpu_percent, 100.0), 2),
            "peak_memory_bytes": int(peak_memory_bytes),
            "memory_percent": round(peak_memory_bytes / memory_total * 100, 2) if memory_total else None,
            "wall_seconds": round(wall_seconds, 3), "nodes": 1, "samples": samples}


def combined(records: list[dict]) -> dict | None:
    """A pipeline job's usage from its steps' (run one after another): CPU seconds and run time add up, the
    memory peak is the highest step's."""
    import psutil
    records = [r for r in records if r]
    if not records:
        return None
    return usage_record(sum(r.get("cpu_seconds") or 0.0 for r in records),
                        max(r.get("peak_memory_bytes") or 0 for r in records),
                        sum(r.get("wall_seconds") or 0.0 for r in records), os.cpu_count() or 1,
                        psutil.virtual_memory().total, sum(r.get("samples") or 0 for r in records))


def _descendants(pid: int) -> list[int]:
    """Every process under pid, from /proc/<pid>/task/<tid>/children (psutil's children() reads every process's
    stat on the machine). Each thread has its own list: a child started from a worker thread is in that one's."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            threads = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in threads:
            try:
                children = [int(c) for c in Path(f"/proc/{parent}/task/{tid}/children").read_text().split()]
            except (OSError, ValueError):
                continue
            found += children
            pending += children
    return found
