"""What `mlops status` shows: models with their metrics and lineage, training jobs and the gate's
decisions, endpoints with deployments and traffic, monitoring passes and alerts, drops and rejected events. Read
through the lifecycle's own ports, so it works the same for the local stack and for Azure."""
from __future__ import annotations

from dataclasses import asdict

from lifecycle import clock
from lifecycle.core import retraining
from lifecycle.core.rollout_machine import Rollout, RolloutEvent
from lifecycle.core.state_records import AlertRecord, Decision, Drop, MonitorRun, Promotion, Rejection, TrainingRun
from lifecycle.model_scope import for_model, scoped
from lifecycle.ports import Platform
from lifecycle.steps import compute_usage

HEADLINE = ("accuracy", "f1", "mae", "rmse", "r2")     # a monitoring pass's figures, as the task has them


def collect(p: Platform, model_name: str = "") -> dict:
    """One model's status (the named one, or the app's only one); for an app of several, each model's in
    turn under "app_models", with what the app shares (rejected events, stage) once."""
    if model_name or len(p.catalog) == 1:
        return _collect_model(for_model(p, model_name), app_wide=True)
    return {"app_models": [_collect_model(scoped(p, policies), app_wide=False) for policies in p.catalog],
            "stage": p.policies.promotion.stage or None, "registry": p.policies.promotion.registry or None,
            "rejections": _rejections(p), "notification_dead_letters": _notification_dead_letters(p)}


def _collect_model(p: Platform, app_wide: bool) -> dict:
    model = p.policies.model
    decisions = {d.job_name: d for d in p.state.list(Decision)}
    jobs = []
    runs = [r for r in p.state.list(TrainingRun) if r.model_name == model.name]
    live_jobs = {}
    for run in sorted(runs, key=lambda r: r.submitted_at):
        live = live_jobs[run.job_name] = p.jobs.get(run.job_name)
        decision = decisions.get(run.job_name)
        jobs.append({
            "name": run.job_name, "status": live.status if live else run.status,
            "error": (live.error if live else None) or run.error or None, "trigger": run.trigger,
            "data": run.data_url, "files": len(run.data_files), "new_batches": len(run.new_batches),
            "champion": run.champion or None, "submitted_at": run.submitted_at,
            "decision": None if decision is None else {
                "outcome": decision.outcome, "version": decision.version or None, "reasons": list(decision.reasons),
                "metrics": decision.metrics, "champion_metrics": decision.champion_metrics,
                "reviewed_by": decision.reviewed_by or None, "reviewed_at": decision.reviewed_at or None},
        })
    models = [{"name": m.name, "version": m.version, "path": m.path, "created": m.created, "tags": m.tags,
               "metrics": {k.removeprefix("metric."): float(v) for k, v in m.tags.items() if k.startswith("metric.")}}
              for m in p.registry.versions(model.name)]
    endpoints = []
    endpoint = p.endpoints.get(model.endpoint)
    if endpoint:
        endpoints.append({
            "name": endpoint.name, "scoring_uri": endpoint.scoring_uri, "traffic": endpoint.traffic,
            "mirror_traffic": endpoint.mirror_traffic,
            "deployments": [{"name": d.name, "model": d.model, "state": d.state, "error": d.error,
                             "traffic": endpoint.traffic.get(d.name, 0)} for d in endpoint.deployments],
        })
    ours = f"{model.name}:"
    return {
        "model_name": model.name,
        "task": model.task,
        "data_root": f"{model.data_container}/{model.data_root}",
        "training_window": str(model.training_window),
        "training": model.training_spec or "training/job.yml",
        "models": models,
        "jobs": jobs,
        "endpoints": endpoints,
        "rollout": _rollout(p.state.get(Rollout, model.endpoint)),
        "rollouts": [{"rollout_id": r.rollout_id, "model": r.model, "outcome": r.outcome, "reason": r.reason,
                      "started_at": r.started_at, "finished_at": r.finished_at}
                     for r in sorted(p.state.list(RolloutEvent), key=lambda r: r.finished_at)
                     if r.model.startswith(ours)],
        "monitoring": [_monitor_run(r) for r in sorted(p.state.list(MonitorRun), key=lambda r: r.window_end)
                       if r.endpoint == model.endpoint][-10:],
        "alerts": [{"alert_id": a.alert_id, "source": a.source, "signal": a.signal, "condition": a.condition,
                    "summary": a.summary, "outcome": a.outcome, "detail": a.detail, "job": a.job or None,
                    "received_at": a.received_at, "resolved_at": a.resolved_at or None}
                   for a in sorted(p.state.list(AlertRecord), key=lambda a: a.received_at)
                   if a.model == model.name or (app_wide and not a.model)],
        "drops": [{"prefix": d.prefix, "container": d.container, "files": len(d.batches), "marker": d.marker,
                   "last_seen": d.last_seen, "job": d.job or None, "attempts": d.attempts,
                   "new_files": len(d.pending), "left_out": len(d.failed)}
                  for d in sorted(retraining.model_drops(p.state.list(Drop), model), key=lambda d: d.last_seen)],
        "stage": p.policies.promotion.stage or None,
        "registry": p.policies.promotion.registry or None,
        "promotions": [_promotion(r) for r in sorted(p.state.list(Promotion), key=lambda r: r.received_at)
                       if r.model.startswith(ours)],
        "lineage": _lineage(p, endpoint.traffic if endpoint else {}, endpoint),
        "compute": compute_usage.collect(p, clock.now(), known=live_jobs),
        "rejections": _rejections(p) if app_wide else [],
        "notification_dead_letters": _notification_dead_letters(p) if app_wide else [],
    }


def _rejections(p: Platform) -> list[dict]:
    return [{"event_id": r.event_id, "event_type": r.event_type, "subject": r.subject, "function": r.function,
             "reason": r.reason, "rejected_at": r.rejected_at} for r in p.state.list(Rejection)]


def _notification_dead_letters(p: Platform) -> list[dict]:
    """The decisions a webhook did not take (NOTIFY_WEBHOOKS), newest first: nobody was told of them."""
    from lifecycle.handlers.notify import dead_letters
    return [{"event_id": d.event_id, "event_type": d.event_type, "summary": d.summary, "webhook": d.target,
             "attempts": d.attempts, "last_status": d.last_status, "last_error": d.last_error,
             "dead_lettered_at": d.dead_lettered_at} for d in dead_letters(p)[:20]]


def _promotion(r: Promotion) -> dict:
    return {"model": r.model, "status": r.status, "registry": r.registry, "asset_id": r.asset_id or None,
            "preprod_version": r.source.get("version"), "job": r.source.get("job"), "data": r.source.get("data"),
            "data_batches": [b for b in (r.source.get("data_batches") or "").split(",") if b],
            "received_at": r.received_at, "decided_by": r.decided_by or None, "reason": r.reason or None}


def _lineage(p: Platform, traffic: dict, endpoint) -> list[dict]:
    """Each deployment serving traffic, back to where its model came from: in production, the registry
    version, the preprod version, its job and its data; elsewhere, the job and data of the workspace version."""
    chains = []
    for deployment in (endpoint.deployments if endpoint else ()):
        if not traffic.get(deployment.name):
            continue
        name, _, version = deployment.model.partition(":")
        found = p.registry.get(name, version)
        tags = found.tags if found else {}
        chains.append({
            "deployment": deployment.name, "traffic": traffic[deployment.name], "model": deployment.model,
            "registry": (found.registry or None) if found else None,
            "asset_id": found.asset_id if found else None,
            "preprod_version": tags.get("mlops.preprod_version"), "job": tags.get("mlops.job"),
            "data": tags.get("mlops.data"),
            "data_batches": [b for b in tags.get("mlops.data_batches", "").split(",") if b]})
    return chains


def _monitor_run(run: MonitorRun) -> dict:
    result = run.result
    window, drift = result.get("window") or {}, result.get("drift") or {}
    performance = (result.get("performance") or {}).get("metrics") or {}
    holdout = (result.get("performance") or {}).get("baseline") or {}
    return {"model": run.model, "deployment": run.deployment, "window_start": run.window_start,
            "window_end": run.window_end, "rows": window.get("rows"), "labelled": window.get("labelled"),
            "drifted_features": drift.get("drifted_features") or [], "accuracy": performance.get("accuracy"),
            "performance": {k: v for k, v in performance.items() if k in HEADLINE and isinstance(v, int | float)},
            "recommendation": (result.get("utilisation") or {}).get("recommendation"),
            "alerts": [f"{a['signal']} {a['condition'].lower()}" for a in result.get("alerts") or []],
            "status": run.status, "job": run.job or None, "warning": run.warning or None, "error": run.error or None,
            "note": result.get("skipped"),
            # over time (the dashboard's charts): each feature's drift score this pass, and the holdout's figures
            # the performance is measured against
            "drift_scores": {name: _drift_score(f) for name, f in (drift.get("features") or {}).items()
                             if isinstance(f, dict)},
            "holdout": {k: v for k, v in holdout.items() if k in HEADLINE and isinstance(v, int | float)}}


def _drift_score(feature: dict) -> dict:
    """One feature's drift in a pass: its PSI (the distance every kind of feature has) against its threshold,
    the adjusted p-value of its test, and whether it drifted."""
    metrics, thresholds = feature.get("metrics") or {}, feature.get("thresholds") or {}
    return {"kind": feature.get("kind"), "psi": _number(metrics.get("psi")),
            "threshold": _number(thresholds.get("psi")), "pvalue": _number(feature.get("pvalue_adjusted")),
            "drifted": bool(feature.get("drifted"))}


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and value == value and abs(value) != float("inf") else None


def _rollout(r: Rollout | None) -> dict | None:
    if r is None:
        return None
    shown = asdict(r)
    shown["active"] = r.active
    shown["live_model"] = r.live_model
    return shown
