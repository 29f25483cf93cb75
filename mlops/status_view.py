"""Rendering `mlops status` for a person."""
from __future__ import annotations

import re

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from monitoring import compute_report as cr

_STATUS = {"Completed": "green", "Failed": "red", "Canceled": "red", "Running": "yellow", "Queued": "yellow",
           "Succeeded": "green", "Creating": "yellow", "Updating": "yellow", "registered": "green", "rejected": "red",
           "live": "green", "deploying": "yellow", "failed": "red", "superseded": "dim", "retraining": "green",
           "cooldown": "yellow", "no fresh data": "yellow", "training already running": "yellow",
           "needs a person": "red", "resolved": "dim"}


def _c(text: str | None) -> str:
    return f"[{_STATUS.get(text or '', 'white')}]{text}[/]" if text else "-"


def _metrics(values: dict | None) -> str:
    return "  ".join(f"{k} {v:.3f}" for k, v in (values or {}).items() if isinstance(v, (int, float))) or "-"


def _table(*columns: str, title: str | None = None) -> Table:
    """A table for 80 columns: light rules, no outer edge, and cells that fold rather than end in '…'."""
    table = Table(*columns, title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in table.columns:
        column.overflow = "fold"
    return table


def _lines(console: Console, head: str, details: list[str], indent: int = 4) -> None:
    """`head` on its line, each detail on its own below it, wrapped under itself (a hanging indent)."""
    console.print(head, soft_wrap=False)
    if not details:
        return
    grid = Table.grid()
    grid.add_column(width=indent)
    grid.add_column(overflow="fold")
    for detail in details:
        grid.add_row("", detail)
    console.print(grid)


def short_url(url: str | None) -> str:
    """A data URL relative to its container: http://127.0.0.1:10000/devstoreaccount1/data/drops/x →
    data/drops/x, https://acct.blob.core.windows.net/data/x → data/x, azureml://.../paths/x → x."""
    if not url:
        return "-"
    text = str(url)
    if "://" not in text:
        return text
    scheme, _, rest = text.partition("://")
    if scheme == "azureml" and "/paths/" in rest:
        return rest.split("/paths/", 1)[1]
    host, _, path = rest.partition("/")
    if host.startswith(("127.0.0.1", "localhost")) and path.startswith("devstoreaccount1/"):
        path = path[len("devstoreaccount1/"):]
    return path or text


_STORAGE_HOST = re.compile(r"https?://(?:(?:127\.0\.0\.1|localhost)(?::\d+)?/devstoreaccount1|"
                           r"[a-z0-9]+\.blob\.core\.windows\.net)/")


def short_urls_in(text: str | None) -> str:
    """Free text (a reason, a detail) with each storage URL in it relative to its container."""
    return _STORAGE_HOST.sub("", text or "")


def render(console: Console, status: dict) -> None:
    """One model's status, or each model's of an app of several, then what the app shares."""
    for shown in status.get("app_models") or ():
        console.rule(f"[bold]{shown['model_name']}[/] ({shown['task']})", align="left")
        render(console, shown)
    if "app_models" in status:
        _render_rejections(console, status)
        return
    console.print(f"[bold]{status['model_name']}[/]: {status['task']}, trained by {status['training']} on "
                  f"{status['data_root']} ({status['training_window']})")
    models = _table("version", "trigger", "metrics, job and data", title=f"models: {status['model_name']}")
    for m in status["models"]:
        tags = m["tags"]
        models.add_row(m["version"], tags.get("mlops.trigger", "-"),
                       f"{_metrics(m['metrics'])}\n[dim]job[/] {tags.get('mlops.job', '-')}\n"
                       f"[dim]data[/] {short_url(tags.get('mlops.data'))}")
    console.print(models if status["models"] else "[dim]no model registered yet[/]")

    jobs = _table("status", "decision", "job, its data and why", title="training jobs")
    for j in status["jobs"]:
        decision = j["decision"] or {}
        outcome = decision.get("outcome")
        if outcome == "registered":
            outcome = f"registered v{decision.get('version')}"
        shown = _c(outcome) if outcome else "-"
        cell = [j["name"]]
        read = f", read {j['files']} file(s), {j['new_batches']} new" if j.get("files") else ""
        cell.append(f"[dim]{j['trigger']}{read}{': ' + escape(short_url(j.get('data'))) if j.get('data') else ''}[/]")
        if outcome == "held":
            shown = "[yellow]held for a person[/]"
            cell.append(f"[yellow]mlops approve|reject {j['name']}[/]")
        elif decision.get("reviewed_by"):
            shown += f"\n[dim]by {decision['reviewed_by']}[/]"
        if j["error"]:
            cell.append(f"[red]{escape(short_urls_in(j['error']))}[/]")
        cell += [f"- {escape(short_urls_in(reason))}" for reason in decision.get("reasons", [])]
        jobs.add_row(_c(j["status"]), shown, "\n".join(cell))
    console.print(jobs if status["jobs"] else "[dim]no training job yet[/]")
    _render_compute(console, status.get("compute"))

    for e in status["endpoints"]:
        table = _table("deployment", "model", "state", "traffic", title=f"endpoint {e['name']}")
        for d in e["deployments"]:
            mirror = e["mirror_traffic"].get(d["name"])
            traffic = f"{d['traffic']}%" + (f" (+{mirror}% mirrored)" if mirror else "")
            table.add_row(d["name"], d["model"], _c(d["state"]) + (f"\n[red]{d['error']}[/]" if d["error"] else ""),
                          traffic)
        console.print(table)
        console.print(f"[dim]scoring URI[/] {e['scoring_uri']}", soft_wrap=True)
    if not status["endpoints"]:
        console.print("[dim]no endpoint yet[/]")
    _render_promotion(console, status)

    r = status.get("rollout")
    if r:
        paused = " (paused)" if r["paused"] else ""
        details = [f"[dim]{entry['time'][11:19]}[/] {escape(short_urls_in(entry['note']))}"
                   for entry in r["history"][-6:]]
        for check in (r.get("judgement") or {}).get("checks", []):
            colour = {"pass": "green", "fail": "red", "skipped": "dim"}.get(check["outcome"], "yellow")
            details.append(f"[{colour}]{check['outcome']}[/] {escape(short_urls_in(check['detail']))}")
        _lines(console, f"[bold]rollout[/] {r['model']} on {r['colour']} beside {r['baseline'] or '-'} "
                        f"({r['baseline_model'] or 'first model'}): {_c(r['phase'])}{paused}; "
                        f"live: {r['live_model'] or '-'}", details, indent=2)

    if status.get("monitoring"):
        runs = _table("window", "model", "rows", "findings", title="monitoring (latest passes)")
        for m in status["monitoring"]:
            model = f"{m['model']}\n[dim]{m['deployment']}[/]"
            unjudged = _unjudged(m)
            if unjudged:                 # no result (yet): say why across the figures' columns
                runs.add_row(m["window_end"][11:19], model, "-", unjudged)
                continue
            findings = [_metrics(m.get("performance"))]
            findings.append(f"[dim]drifted:[/] {', '.join(m['drifted_features']) or '-'}")
            findings.append(f"[dim]alerts:[/] {', '.join(m['alerts']) if m['alerts'] else '[green]none[/]'}")
            if m.get("recommendation"):
                findings.append(f"[dim]scaling:[/] {m['recommendation']}")
            runs.add_row(m["window_end"][11:19], model, f"{m['rows']}\n[dim]{m['labelled']} labelled[/]",
                         "\n".join(findings))
        console.print(runs)
    if status.get("alerts"):
        shown_alerts = status["alerts"][-10:]
        earlier = len(status["alerts"]) - len(shown_alerts)
        console.print("[italic]alerts[/]" + (f" [dim](the last 10; {earlier} earlier: mlops status --json)[/]"
                                             if earlier else ""))
        for a in shown_alerts:
            resolved = f" [dim](resolved {a['resolved_at'][11:19]})[/]" if a["resolved_at"] else ""
            details = [escape(short_urls_in(a["summary"]))] if a.get("summary") else []
            if a["detail"]:
                details.append(f"[dim]{escape(short_urls_in(a['detail']))}[/]")
            _lines(console, f"  [dim]{a['received_at'][11:19]}[/] {a['signal']} {a['condition'].lower()} "
                            f"[dim]({a['source']})[/] → {_c(a['outcome'])}{resolved}", details, indent=4)

    _render_rejections(console, status)


def _render_rejections(console: Console, status: dict) -> None:
    if status["rejections"]:
        rejected = _table("event", "function", "reason", title="rejected events")
        for r in status["rejections"]:
            rejected.add_row(f"{r['event_type']}\n[dim]{r['event_id'][:12]}[/]", r["function"],
                             escape(short_urls_in(r["reason"])))
        console.print(rejected)
    for d in status.get("notification_dead_letters") or ():
        # a decision nobody was told of: the webhook that did not take it, why, and the decision
        console.print(f"[red]not notified:[/] {d['event_type']}, {d['dead_lettered_at'][:19]}")
        console.print(f"  {escape(d['webhook'])}: {escape(d['last_error'] or str(d['last_status']))}, "
                      f"{d['attempts']} attempt(s)")
        console.print(f"  [dim]{escape(d['summary'])}[/]")


COMPUTE_JOBS = 10              # the latest jobs shown; --json has them all


def _render_compute(console: Console, compute: dict | None) -> None:
    """Training compute: the latest jobs' figures, one line each (a slowed one marked below it), then the totals
    and the month's estimate, the cluster's nodes and the advice for its settings."""
    if compute is None:           # a status written before compute was collected
        return
    jobs = compute.get("jobs") or []
    shown = jobs[-COMPUTE_JOBS:]
    earlier = len(jobs) - len(shown)
    title = "training compute" + (f" (the last {len(shown)}; {earlier} earlier: mlops status --json)"
                                  if earlier else "")
    table = _table("job", "kind", "took", "queue", "CPU", "memory", compute.get("currency") or "cost", title=title)
    table.padding = (0, 0)        # one space between columns: a job's figures on one line in 80 columns
    for j in shown:
        mark = cr.slowed_mark(j)
        table.add_row(cr.short_job(j.get("name") or "") + (f"\n[yellow]{mark}[/]" if mark else ""),
                      _kind(j),
                      ("[yellow]" + cr.duration(j.get("duration_seconds")) + "[/]") if mark
                      else cr.duration(j.get("duration_seconds")),
                      cr.duration(j.get("queue_seconds")), cr.percent(j.get("cpu_percent")),
                      cr.memory(j.get("peak_memory_bytes")), cr.amount(j.get("cost")))
    console.print(table if jobs else "[dim]training compute: no job has run yet[/]")
    details = [escape(cr.nodes_line(compute))] if cr.nodes_line(compute) else []
    details += [escape(cr.advice_line(a)) for a in compute.get("advice") or ()]
    _lines(console, f"[italic]compute[/] {escape(cr.totals_line(compute))}", details, indent=2)


def _kind(job: dict) -> str:
    """'training: drift'; a monitoring pass is 'monitoring' alone, as its timer starts it."""
    kind, trigger = job.get("kind") or "-", job.get("trigger")
    return f"{kind}: {trigger}" if trigger and not (kind == "monitoring" and trigger == "schedule") else kind


def _unjudged(m: dict) -> str:
    """Why a monitoring pass has no figures: found no collected data (where it looked), failed, still running,
    or too few rows; '' for a judged pass."""
    if m.get("warning"):
        return f"[yellow]warning: {escape(m['warning'])}[/]"
    if m.get("status") == "Failed":
        return f"[red]job {m.get('job') or '-'} failed: {m.get('error') or 'no reason given'}[/]"
    if m.get("status") == "Submitted":
        return f"[yellow]job {m.get('job')} running[/]"
    if m.get("note"):
        return f"[dim]{m['note']}[/]"
    return ""


def _render_promotion(console: Console, status: dict) -> None:
    """In preprod and production: the models on their way through the registry, and where the live one came from."""
    for chain in status.get("lineage") or ():
        if chain.get("registry"):
            batches = ", ".join(chain["data_batches"]) or "-"
            _lines(console, f"[bold]lineage[/] {chain['deployment']} ({chain['traffic']}%)", [
                f"→ registry {chain['registry']} {chain['model']}",
                f"→ preprod version {chain['preprod_version'] or '-'}",
                f"→ job {chain['job'] or '-'}",
                f"→ data {short_url(chain['data'])} (batches {escape(batches)})"], indent=2)
    if not status.get("promotions"):
        return
    console.print(f"[italic]promotions[/] ({status.get('stage') or '-'}, registry {status.get('registry') or '-'})")
    for promotion in status["promotions"]:
        details = [f"from preprod version {promotion['preprod_version'] or '-'}, job {promotion['job'] or '-'}"]
        if promotion["status"] == "awaiting approval":
            details.append(f"[yellow]mlops promote approve|reject {promotion['model']}[/]")
        if promotion.get("reason"):
            details.append(f"[dim]{escape(short_urls_in(promotion['reason']))}[/]")
        by = f" [dim]by {promotion['decided_by']}[/]" if promotion["decided_by"] else ""
        _lines(console, f"  {promotion['model']} {_c(promotion['status'])}{by}", details)
