"""Rendering `mlops status` for a person."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

_STATUS = {"Completed": "green", "Failed": "red", "Canceled": "red", "Running": "yellow", "Queued": "yellow",
           "Succeeded": "green", "Creating": "yellow", "Updating": "yellow", "registered": "green", "rejected": "red",
           "live": "green", "deploying": "yellow", "failed": "red", "superseded": "dim", "retraining": "green",
           "cooldown": "yellow", "no fresh data": "yellow", "training already running": "yellow",
           "needs a person": "red", "resolved": "dim"}


def _c(text: str | None) -> str:
    return f"[{_STATUS.get(text or '', 'white')}]{text}[/]" if text else "-"


def _metrics(values: dict | None) -> str:
    return "  ".join(f"{k} {v:.3f}" for k, v in (values or {}).items() if isinstance(v, (int, float))) or "-"


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
    models = Table("version", "metrics", "job", "trigger", "data", title=f"models: {status['model_name']}",
                   title_justify="left")
    for m in status["models"]:
        tags = m["tags"]
        models.add_row(m["version"], _metrics(m["metrics"]), tags.get("mlops.job", "-"), tags.get("mlops.trigger", "-"),
                       tags.get("mlops.data", "-"))
    console.print(models if status["models"] else "[dim]no model registered yet[/]")

    jobs = Table("job", "status", "trigger", "decision", "why", title="training jobs", title_justify="left")
    for j in status["jobs"]:
        decision = j["decision"] or {}
        why = j["error"] or "; ".join(decision.get("reasons", [])) or "-"
        outcome = decision.get("outcome")
        if outcome == "registered":
            outcome = f"registered v{decision.get('version')}"
        shown = _c(outcome) if outcome else "-"
        if outcome == "held":
            shown = f"[yellow]held for a person[/]\nmlops approve|reject {j['name']}"
        elif decision.get("reviewed_by"):
            shown += f"\n[dim]by {decision['reviewed_by']}[/]"
        data = f"\n[dim]read {j['files']} file(s), {j['new_batches']} new[/]" if j.get("files") else ""
        jobs.add_row(j["name"] + data, _c(j["status"]), j["trigger"], shown, why)
    console.print(jobs if status["jobs"] else "[dim]no training job yet[/]")

    for e in status["endpoints"]:
        table = Table("deployment", "model", "state", "traffic", title=f"endpoint {e['name']}  {e['scoring_uri']}",
                      title_justify="left")
        for d in e["deployments"]:
            mirror = e["mirror_traffic"].get(d["name"])
            traffic = f"{d['traffic']}%" + (f" (+{mirror}% mirrored)" if mirror else "")
            table.add_row(d["name"], d["model"], _c(d["state"]) + (f"\n[red]{d['error']}[/]" if d["error"] else ""),
                          traffic)
        console.print(table)
    if not status["endpoints"]:
        console.print("[dim]no endpoint yet[/]")
    _render_promotion(console, status)

    r = status.get("rollout")
    if r:
        paused = " (paused)" if r["paused"] else ""
        console.print(f"[bold]rollout[/] {r['model']} on {r['colour']} beside {r['baseline'] or '-'} "
                      f"({r['baseline_model'] or 'first model'}): {_c(r['phase'])}{paused}; "
                      f"live: {r['live_model'] or '-'}")
        for entry in r["history"][-6:]:
            console.print(f"  [dim]{entry['time'][11:19]}[/] {entry['note']}")
        for check in (r.get("judgement") or {}).get("checks", []):
            colour = {"pass": "green", "fail": "red", "skipped": "dim"}.get(check["outcome"], "yellow")
            console.print(f"  [{colour}]{check['outcome']:>12}[/] {check['detail']}")

    if status.get("monitoring"):
        runs = Table("window end", "model", "rows", "labelled", "performance", "drifted", "alerts", "scaling",
                     title="monitoring (latest passes)", title_justify="left")
        for m in status["monitoring"]:
            accuracy = _metrics(m.get("performance"))
            model = f"{m['model']} ({m['deployment']})"
            unjudged = _unjudged(m)
            if unjudged:                 # no result (yet): say why across the figures' columns
                runs.add_row(m["window_end"][11:19], model, unjudged, "", "", "", "", "")
                continue
            runs.add_row(m["window_end"][11:19], model, str(m["rows"]),
                         str(m["labelled"]), accuracy, ", ".join(m["drifted_features"]) or "-",
                         "\n".join(m["alerts"]) or "[green]none[/]", m["recommendation"] or "-")
        console.print(runs)
    if status.get("alerts"):
        alerts = Table("received", "source", "signal", "condition", "outcome", "detail", title="alerts",
                       title_justify="left")
        for a in status["alerts"][-10:]:
            alerts.add_row(a["received_at"][11:19], a["source"], a["signal"], a["condition"],
                           _c(a["outcome"]), a["detail"] + (" (resolved)" if a["resolved_at"] else ""))
        console.print(alerts)

    _render_rejections(console, status)


def _render_rejections(console: Console, status: dict) -> None:
    if status["rejections"]:
        rejected = Table("event", "type", "function", "reason", title="rejected events", title_justify="left")
        for r in status["rejections"]:
            rejected.add_row(r["event_id"][:12], r["event_type"], r["function"], r["reason"])
        console.print(rejected)


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
            console.print(f"[bold]lineage[/] {chain['deployment']} ({chain['traffic']}%) → registry "
                          f"{chain['registry']} {chain['model']} → preprod version {chain['preprod_version'] or '-'} "
                          f"→ job {chain['job'] or '-'} → data {chain['data'] or '-'} (batches {batches})",
                          soft_wrap=True)
    if not status.get("promotions"):
        return
    table = Table("model", "status", "preprod version", "job", "decided by",
                  title=f"promotions ({status.get('stage') or '-'}, registry {status.get('registry') or '-'})",
                  title_justify="left")
    for promotion in status["promotions"]:
        shown = _c(promotion["status"])
        if promotion["status"] == "awaiting approval":
            shown = f"[yellow]awaiting approval[/]\nmlops promote approve|reject {promotion['model']}"
        table.add_row(promotion["model"], shown, promotion["preprod_version"] or "-", promotion["job"] or "-",
                      promotion["decided_by"] or "-")
    console.print(table)
