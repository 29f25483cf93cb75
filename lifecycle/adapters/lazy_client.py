"""A value an adapter builds on first use and then keeps: an Azure SDK client, the credential it authenticates
with. Importing an SDK costs seconds, which a function's cold start should not pay before a call needs it.

    class Adapter:
        def __init__(self, credential=None):
            self._credential = credential        # given: used as is; None: built on first read
            self._client = None

        credential = lazy_client("_credential")(lambda self: default_credential())

        @lazy_client("_client")
        def client(self):
            from azure.some.sdk import Client    # imported on first use
            return Client(self.credential)

Threads that read the attribute together build it once (functools.cached_property has no lock since
Python 3.12). A build that raises leaves the attribute unset, so the next read tries again."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class LazyClient(Generic[T]):
    """A read-only attribute whose value `build(instance)` makes on first read and keeps in the instance's
    attribute `slot`; whatever is not None there already (set in __init__) is the value as is."""

    def __init__(self, build: Callable[[Any], T], slot: str) -> None:
        self._build = build
        self._slot = slot
        self._lock = threading.RLock()     # one per attribute, shared by the instances: builds are rare
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> LazyClient[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> LazyClient[T] | T:
        if instance is None:
            return self
        value: T | None = getattr(instance, self._slot, None)
        if value is None:
            with self._lock:
                value = getattr(instance, self._slot, None)
                if value is None:
                    value = self._build(instance)
                    setattr(instance, self._slot, value)
        return value

    def __set__(self, instance: object, value: T) -> None:
        raise AttributeError(f"{getattr(self, '_name', self._slot)} is built on first use and cannot be set")


def lazy_client(slot: str) -> Callable[[Callable[[Any], T]], LazyClient[T]]:
    """Decorates the method that builds the value: `@lazy_client("_client") def client(self): ...`."""
    def wrap(build: Callable[[Any], T]) -> LazyClient[T]:
        return LazyClient(build, slot)
    return wrap
