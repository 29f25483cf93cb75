"""A handler acts for one model at a time: the platform it is given, scoped to that model's policies.
Timers act for every model in turn, each apart: one model's failure is logged and raised after the others
have had their turn, so it never stops them."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar, cast

from lifecycle.core import model_catalog
from lifecycle.core.policies import Policies
from lifecycle.ports import UsesPolicies

log = logging.getLogger("lifecycle.models")
P = TypeVar("P", bound=UsesPolicies)
T = TypeVar("T")


class UnknownModel(ValueError):
    """A person named a model this app does not keep."""


class ModelsFailed(RuntimeError):
    """Some models' turn of a timer failed (the others went on); the first failure is its cause."""


def scoped(p: P, policies: Policies) -> P:
    """The platform acting for this model (the Platform is a frozen dataclass; so are the tests' fakes)."""
    return p if policies == p.policies else cast(P, replace(cast(Any, p), policies=policies))


def for_model(p: P, name: str) -> P:
    """The platform acting for the model a person named ("" = the app's only model)."""
    if not name and len(p.catalog) == 1:
        return p
    found = model_catalog.by_name(p.catalog, name)
    if found is None:
        names = ", ".join(m.model.name for m in p.catalog)
        raise UnknownModel(f"this app keeps {names}: name one of them" if not name
                           else f"model {name!r} is not one this app keeps ({names})")
    return scoped(p, found)


def each_model(p: P, action: Callable[[P], T], what: str) -> list[T]:
    """`action` for each model, in the catalog's order; what it returns, for the models it did not fail."""
    done, failed = [], []
    for policies in p.catalog:
        try:
            done.append(action(scoped(p, policies)))
        except Exception as error:
            log.exception("%s for model %s failed; the other models go on", what, policies.model.name)
            failed.append((policies.model.name, error))
    if failed:
        names = ", ".join(name for name, _ in failed)
        raise ModelsFailed(f"{what} failed for {names}: {failed[0][1]}") from failed[0][1]
    return done
