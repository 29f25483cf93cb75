"""Training compute in words and in the monitoring report: what each job took (duration, queue, CPU, memory,
cost), the totals with an estimate for a month, the cluster's nodes and the advice for its settings.

The input is the compute view `mlops status` collects (its "compute" key): {"cluster", "vm_size",
"rate_per_node_hour", "currency", "jobs": [...], "totals": {...}, "nodes": {...} | None, "advice": [...]}.
Any figure may be None (not measured) and the job list empty. The sentences here are shared by `mlops status`
(mlops/status_view.py) and the report's section (`compute_section`), so both say the same thing the same way.
"""
from __future__ import annotations

import math
import re
from datetime import datetime

from monitoring.report_format import Markup, as_float, bullet_list, e, none_note, section, table

KIND_COLOURS = {"training": "#1f77b4", "monitoring": "#2ca02c"}
SLOWED_COLOUR = "#d62728"
SETTINGS = {"min_nodes": "min nodes", "max_nodes": "max nodes", "idle_seconds": "idle seconds",
            "vm_size": "VM size"}
_HASH = re.compile(r"-([0-9a-f]{16,})$")         # a job name's deterministic hash: its first 6 digits tell it apart
# The lifecycle's own job names (lifecycle/core/platform_values.py): train-<model>-<trigger>-<16 hex> and
# monitor-<endpoint>-<window end>-<12 hex>. A table is one model's, so its name and endpoint say nothing there.
_TRAINING = re.compile(r"^train-.+-([a-z_]+)-([0-9a-f]{6})[0-9a-f]{10}$")
_MONITORING = re.compile(r"^monitor-.+-(\d{8}t\d{6})-[0-9a-f]{12}$")


# ---- numbers in words ------------------------------------------------------------------------------------------

def _finite(value) -> float | None:
    number = as_float(value)
    return number if math.isfinite(number) else None


def _round(number: float) -> int:
    """Halves up, as the dashboard's Math.round does (Python's round() takes them to the even)."""
    return math.floor(number + 0.5)


def duration(seconds) -> str:
    """19s, 1m06s, 2h05m; '-' when not measured."""
    value = _finite(seconds)
    if value is None:
        return "-"
    whole = _round(value)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def memory(size_bytes) -> str:
    """Peak memory in MiB below a GiB, in GiB from there."""
    value = _finite(size_bytes)
    if value is None:
        return "-"
    mib = value / 2**20
    return f"{mib:.0f} MiB" if mib < 1024 else f"{mib / 1024:.1f} GiB"


def amount(value) -> str:
    """A sum of money without its currency: 4 significant digits below 1 (cents of a cent count for one job),
    2 decimals from there."""
    number = _finite(value)
    if number is None:
        return "-"
    return f"{number:.4g}" if abs(number) < 1 else f"{number:,.2f}"


def money(value, currency: str | None) -> str:
    shown = amount(value)
    return shown if shown == "-" else f"{shown} {currency or ''}".rstrip()


def percent(value) -> str:
    number = _finite(value)
    return "-" if number is None else f"{_round(number)}%"


def quantity(value) -> str:
    """Job- and node-minutes: 5.9, 12.3, 177."""
    number = _finite(value)
    if number is None:
        return "-"
    return f"{number:,.0f}" if abs(number) >= 100 else f"{number:.3g}"


def plural(count, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def span(minutes: float) -> str:
    """A window of time: 45m00s, 6 hours, 1 day, 2.5 days."""
    if minutes >= 1440:
        return f"{quantity(minutes / 1440)} day{'' if round(minutes) == 1440 else 's'}"
    if minutes >= 120:
        return f"{quantity(minutes / 60)} hours"
    return duration(minutes * 60)


def short_job(name: str) -> str:
    """A job name narrow enough for a table's column in 80 columns and still unique among a model's recent jobs:
    a training job by its trigger and the hash's first 6 digits (train-credit-drift-9f8e7d6c5b4a3921 →
    train-drift-9f8e7d), a monitoring pass by its window's end (monitor-20261201t110000), any other name with a
    long hash cut to 6 digits."""
    if found := _TRAINING.match(name):
        return f"train-{found[1]}-{found[2]}"
    if found := _MONITORING.match(name):
        return f"monitor-{found[1]}"
    return _HASH.sub(lambda m: "-" + m.group(1)[:6], name or "-")


def slowed_mark(job: dict) -> str:
    """'slowed ×4.1 (usual 1m06s)' for a job that took markedly longer than the model's usual, else ''."""
    slowed = job.get("slowed")
    if not slowed:
        return ""
    factor = _finite(slowed.get("factor"))
    usual = slowed.get("usual_seconds")
    return ("slowed" + (f" ×{factor:.1f}" if factor is not None else "")
            + (f" (usual {duration(usual)})" if _finite(usual) is not None else ""))


# ---- the sentences ---------------------------------------------------------------------------------------------

def totals_line(compute: dict) -> str:
    """'3 jobs over 1 day: 5.9 job-minutes, 0.029 USD; at this rate 0.87 USD a month (177 job-minutes) at 0.293 USD
    per node-hour for Standard_DS3_v2'."""
    t, currency = compute.get("totals") or {}, compute.get("currency")
    jobs, days = t.get("jobs"), _finite(t.get("days"))
    head = plural(jobs if jobs is not None else len(compute.get("jobs") or []), "job")
    if days is not None:
        head += f" over {span(days * 1440)}"
    spent = [f"{quantity(t.get('job_minutes'))} job-minutes"]
    if _finite(t.get("cost")) is not None:
        spent.append(money(t["cost"], currency))
    text = f"{head}: {', '.join(spent)}"
    month = [money(t.get("month_cost"), currency) + " a month"] if _finite(t.get("month_cost")) is not None else []
    if _finite(t.get("month_job_minutes")) is not None:
        month.append(f"({quantity(t['month_job_minutes'])} job-minutes)" if month
                     else f"{quantity(t['month_job_minutes'])} job-minutes a month")
    if month:
        text += "; at this rate " + " ".join(month)
    price = price_line(compute)
    return f"{text} {price}" if price and month else (f"{text}; {price}" if price else text)


def price_line(compute: dict) -> str:
    rate, size = _finite(compute.get("rate_per_node_hour")), compute.get("vm_size")
    if rate is None:
        return f"no price known for {size}" if size else ""
    return f"at {money(rate, compute.get('currency'))} per node-hour" + (f" for {size}" if size else "")


def nodes_line(compute: dict) -> str:
    """The cluster's node usage ('' where there is no cluster, as locally)."""
    n = compute.get("nodes")
    if not n:
        return ""
    minutes = _finite(n.get("minutes"))
    over = f" over {span(minutes)}" if minutes is not None else ""
    parts = [f"{quantity(n.get('active_node_minutes'))} active, {quantity(n.get('idle_node_minutes'))} idle"
             + (f", {quantity(n['unusable_node_minutes'])} unusable" if _finite(n.get("unusable_node_minutes")) else "")
             + " node-minutes"]
    if _finite(n.get("idle_cost")) is not None:
        parts.append(f"idle {money(n['idle_cost'], compute.get('currency'))}")
    if n.get("peak_nodes") is not None:
        parts.append(f"peak {plural(n['peak_nodes'], 'node')}")
    busy = [f"{label} {percent(n.get(key))}" for key, label in (("cpu_percent", "CPU"), ("memory_percent", "memory"))
            if _finite(n.get(key)) is not None]
    if busy:
        parts.append(", ".join(busy))
    return f"nodes of {compute.get('cluster') or 'the cluster'}{over}: " + "; ".join(parts)


def advice_line(advice: dict) -> str:
    """'keep max nodes 2: at most 1 job ran at once ...' or 'VM size Standard_DS3_v2 → Standard_F8s_v2: ...'."""
    setting = SETTINGS.get(advice.get("setting") or "", str(advice.get("setting") or "?").replace("_", " "))
    current, suggested = advice.get("current"), advice.get("suggested")
    shown = "-" if current is None else current
    change = (f"keep {setting} {shown}" if suggested is None or str(suggested) == str(current)
              else f"{setting} {shown} → {suggested}")
    return f"{change}: {advice['reason']}" if advice.get("reason") else change


# ---- the report's section --------------------------------------------------------------------------------------

def compute_section(compute: dict | None, plots) -> str:
    """'Training compute': a plot of each job's duration over time (slowed ones marked) above its CPU and memory,
    the latest jobs' figures, the totals and month estimate, the nodes and the advice."""
    if not compute:
        return section("Training compute", none_note("No training compute figures for this model."))
    jobs = compute.get("jobs") or []
    parts: list[str] = []
    if any(_finite(j.get("duration_seconds")) is not None for j in jobs):
        parts.append(_plot(jobs, plots))
    if jobs:
        currency = compute.get("currency")
        shown = jobs[-20:]
        rows = [[short_job(j.get("name") or ""), j.get("kind") or "-", j.get("trigger") or "-",
                 (j.get("started") or j.get("created") or "-")[:19].replace("T", " "),
                 duration(j.get("duration_seconds")),
                 duration(j.get("queue_seconds")), percent(j.get("cpu_percent")), percent(j.get("memory_percent")),
                 memory(j.get("peak_memory_bytes")), money(j.get("cost"), currency),
                 Markup(f'<span class="bad">{e(slowed_mark(j))}</span>') if j.get("slowed") else "–"]
                for j in shown]
        parts.append(table(["job", "kind", "trigger", "started", "took", "queue", "CPU", "memory", "peak memory",
                            "cost", "slowed"], rows))
        if len(jobs) > len(shown):
            parts.append(f'<p class="note">{e(f"The latest {len(shown)} of {len(jobs)} jobs.")}</p>')
    else:
        parts.append(none_note("No training or monitoring job has run yet."))
    lines = [totals_line(compute), nodes_line(compute)]
    parts.append(bullet_list([line for line in lines if line]))
    advice = compute.get("advice") or []
    if advice:
        parts.append("<h3>Cluster settings</h3>" + bullet_list([advice_line(a) for a in advice]))
    return section("Training compute", "\n".join(parts))


def _when(job: dict) -> datetime | None:
    for key in ("started", "created"):
        try:
            return datetime.fromisoformat(str(job[key]).replace("Z", "+00:00"))
        except (KeyError, TypeError, ValueError):
            continue
    return None


def _points(x: list, jobs: list[dict], key: str, keep=lambda job: True) -> list[tuple]:
    """(x, value) of the jobs `keep` takes whose `key` was measured; durations in minutes."""
    scale = 60 if key == "duration_seconds" else 1
    values = [(xi, _finite(j.get(key))) for xi, j in zip(x, jobs) if keep(j)]
    return [(xi, v / scale) for xi, v in values if v is not None]


def _plot(jobs: list[dict], plots) -> str:
    """Above: each job's duration in minutes at its start, a stem per job coloured by kind, a slowed one ringed red
    with its factor; below: its CPU (mean) and memory (peak), percent of one node. x: time when every job has a
    start, else the jobs in order."""
    times = [_when(j) for j in jobs]
    x = times if all(times) else list(range(1, len(jobs) + 1))
    fig = plots.figure(8, 3.8)
    top, bottom = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    for kind in dict.fromkeys(j.get("kind") or "job" for j in jobs):
        points = _points(x, jobs, "duration_seconds", lambda j, kind=kind: (j.get("kind") or "job") == kind)
        if not points:
            continue
        colour = KIND_COLOURS.get(kind, "#7f7f7f")
        xs, ys = zip(*points)
        top.vlines(xs, 0, ys, colors=colour, linewidth=1.2, alpha=0.6)
        top.plot(xs, ys, "o", color=colour, markersize=4, label=kind)
    slowed = _points(x, jobs, "duration_seconds", lambda j: bool(j.get("slowed")))
    if slowed:
        top.plot(*zip(*slowed), "o", markersize=10, markerfacecolor="none", markeredgecolor=SLOWED_COLOUR,
                 markeredgewidth=1.5, label="slowed")
        for (xi, minutes), j in zip(slowed, [j for j in jobs if j.get("slowed")
                                             and _finite(j.get("duration_seconds")) is not None]):
            factor = _finite(j["slowed"].get("factor"))
            if factor is not None:
                top.annotate(f"×{factor:.1f}", (xi, minutes), textcoords="offset points", xytext=(7, 2),
                             color=SLOWED_COLOUR, fontsize=7)
    top.set_ylabel("minutes")
    top.set_ylim(bottom=0)
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    for key, label, marker in (("cpu_percent", "CPU (mean)", "o"), ("memory_percent", "memory (peak)", "s")):
        points = _points(x, jobs, key)
        if points:
            bottom.plot(*zip(*points), marker, markersize=4, label=label)
    bottom.set_ylabel("% of a node")
    bottom.set_ylim(0, 105)
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    if x and isinstance(x[0], datetime):
        plots.time_axis(fig, x)
    else:
        for ax in fig.axes:
            ax.set_xlabel("job")
    fig.subplots_adjust(left=0.08, right=0.8, bottom=0.14, top=0.96, hspace=0.45)
    return ('<p class="note">Each job\'s duration at its start (slowed ones ringed, with how many times the usual '
            "they took), and below it its CPU and memory as a percent of one node.</p>" + plots.svg(fig))
