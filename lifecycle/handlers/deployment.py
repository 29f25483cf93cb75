"""A model version was registered: deploy it to the endpoint's idle colour and switch traffic to it
once the deployment is ready (issue 4 replaces the switch with a canary rollout)."""
from __future__ import annotations

import logging
from dataclasses import replace

from lifecycle.events import ModelRegistered
from lifecycle.ports import Platform
from lifecycle.records import Release, utcnow

log = logging.getLogger("lifecycle.deployment")
COLOURS = ("blue", "green")


def model_registered(event: ModelRegistered, p: Platform) -> Release | None:
    settings = p.settings
    if event.model_name != settings.model_name:
        log.info("ignored %s:%s: this app deploys %s", event.model_name, event.model_version, settings.model_name)
        return None
    model = p.registry.get(event.model_name, event.model_version)
    if model is None:
        raise LookupError(f"model {event.model_name}:{event.model_version} is not in the registry yet")  # retried
    endpoint = p.endpoints.ensure_endpoint(settings.endpoint_name)
    live = [r for r in p.state.list(Release) if r.endpoint == endpoint.name and r.status in ("live", "deploying")]
    if any(r.model == model.ref for r in live):
        log.info("%s is already on %s", model.ref, endpoint.name)
        return next(r for r in live if r.model == model.ref)
    taken = {r.deployment for r in live if r.status == "live"}
    colour = next((c for c in COLOURS if c not in taken), COLOURS[0])
    release = Release(endpoint=endpoint.name, deployment=colour, model=model.ref, updated_at=utcnow())
    if not p.state.create(release):
        return p.state.get(Release, release.key)
    for older in live:   # a newer model replaces one still deploying to the same colour
        if older.status == "deploying" and older.deployment == colour:
            _set(p, older, "superseded", f"replaced by {model.ref} before it went live")
    p.endpoints.create_deployment(endpoint.name, colour, model)
    log.info("deploying %s to %s/%s", model.ref, endpoint.name, colour)
    return release


def advance_releases(p: Platform) -> list[Release]:
    """Called on every reconcile tick: a ready deployment takes all traffic, the one it replaces retires."""
    changed = []
    for release in [r for r in p.state.list(Release) if r.status == "deploying"]:
        endpoint = p.endpoints.get(release.endpoint)
        deployment = endpoint.deployment(release.deployment) if endpoint else None
        if deployment is None or deployment.state in ("Creating", "Updating"):
            continue
        if deployment.state != "Succeeded":
            changed.append(_set(p, release, "failed", deployment.error or f"deployment ended {deployment.state}"))
            continue
        p.endpoints.set_traffic(release.endpoint, {release.deployment: 100})
        for old in p.state.list(Release):
            if old.endpoint == release.endpoint and old.status == "live" and old.key != release.key:
                _set(p, old, "superseded", f"replaced by {release.model}")
                if old.deployment != release.deployment:
                    p.endpoints.delete_deployment(old.endpoint, old.deployment)
        changed.append(_set(p, release, "live", f"100% of {release.endpoint} traffic"))
        log.info("%s is live on %s/%s", release.model, release.endpoint, release.deployment)
    return changed


def _set(p: Platform, release: Release, status: str, detail: str) -> Release:
    return p.state.update(Release, release.key, lambda r: replace(r, status=status, detail=detail, updated_at=utcnow())
                          if r and r.status != status else None) or release
