"""The models one app keeps alive, and which of them an event concerns: a blob by its dataset root, a run or
a registered version by its model's name, an alert by its endpoint or model. Each model's events start
only that model's steps, so one model's failure, drift or rollout never touches another."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lifecycle.core.policies import Policies, PolicyError


def check_catalog(models: tuple[Policies, ...]) -> None:
    """Names and endpoints are each one model's; two dataset roots in one container never nest, so a blob
    is one model's data at most. PolicyError names the clash."""
    if not models:
        raise PolicyError("models", "lists no model: name at least one")
    for key in ("name", "endpoint"):
        seen: dict[str, str] = {}
        for p in models:
            value = getattr(p.model, key)
            if value in seen:
                raise PolicyError(key, f"{value!r} is given to two models ({seen[value]} and {p.model.name}): "
                                  f"each model needs its own {key}")
            seen[value] = p.model.name
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            if a.model.data_container != b.model.data_container:
                continue
            outer, inner = sorted((a.model, b.model), key=lambda m: len(m.data_root))
            if inner.data_root.startswith(outer.data_root):
                raise PolicyError("data_root", f"{inner.name}'s dataset root {inner.data_root!r} lies inside "
                                  f"{outer.name}'s {outer.data_root or '(the whole container)'!r}: a file under "
                                  "it would be both models' data; give each model a folder of its own")


def by_name(models: Iterable[Policies], name: str) -> Policies | None:
    return next((p for p in models if p.model.name == name), None)


def by_endpoint(models: Iterable[Policies], endpoint: str) -> Policies | None:
    return next((p for p in models if p.model.endpoint == endpoint), None)


def by_blob(models: Iterable[Policies], container: str, blob_path: str) -> Policies | None:
    """The model whose dataset root holds the blob (roots never nest, so at most one does)."""
    return next((p for p in models if p.model.holds(container, blob_path)), None)


def by_alert(models: tuple[Policies, ...], evidence: Mapping[str, Any]) -> Policies | None:
    """The model an alert concerns, from what its source says: our monitor's endpoint and model, Azure ML's
    monitor name, Azure Monitor's target resource ids or custom properties. With one model, that one."""
    names = set(_strings(evidence, ("endpoint", "model", "monitor", "alertTargetIDs", "customProperties")))
    for p in models:
        for name in names:
            tail = name.rstrip("/").rsplit("/", 1)[-1]
            if (tail in (p.model.endpoint, p.model.name) or name.split(":")[0] == p.model.name
                    or name.startswith((f"{p.model.endpoint}-", f"{p.model.name}-"))):
                return p
    return models[0] if len(models) == 1 else None


def _strings(evidence: Mapping[str, Any], keys: tuple[str, ...]) -> Iterable[str]:
    for key in keys:
        value = evidence.get(key)
        values = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else [value]
        yield from (v for v in values if isinstance(v, str) and v)
