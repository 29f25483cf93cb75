"""Running one invocation the way the Python worker does: sync functions on a shared thread pool, async
ones awaited on the event loop, `context` passed when asked for, the host's Executing/Executed log lines.

An invocation never raises here: its Outcome says whether it succeeded, so every trigger (webhook, timer,
HTTP) reports failures the same way and a failing function never breaks the host's own loop."""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from emulator import faults

from .loader import FunctionSpec

log = logging.getLogger("emulator.functions_host")


@dataclass(frozen=True)
class Outcome:
    invocation_id: str
    result: Any = None
    error: BaseException | None = None
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def detail(self) -> str:
        """A short reason safe to show over HTTP: exception type and message, no traceback."""
        return "" if self.error is None else f"{type(self.error).__name__}: {self.error}"


class InvocationContext(func.Context):
    """func.Context for functions that declare a `context` parameter. No distributed tracing or retry
    policy runs locally, so trace_context and retry_context are None."""

    def __init__(self, invocation_id: str, spec: FunctionSpec) -> None:
        self._invocation_id = invocation_id
        self._name = spec.name
        code = getattr(spec.func, "__code__", None)
        self._directory = os.path.dirname(code.co_filename) if code else os.getcwd()
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> threading.local:
        return self._local

    @property
    def function_name(self) -> str:
        return self._name

    @property
    def function_directory(self) -> str:
        return self._directory

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


class Invoker:
    def __init__(self, max_workers: int = 8) -> None:
        # One pool for the host's lifetime: no thread is created per request.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="function")
        self._running: set[asyncio.Task[Outcome]] = set()

    async def invoke(self, spec: FunctionSpec, binding: Any, *, reason: str,
                     convert: Callable[[Any], Any] | None = None) -> Outcome:
        """Run the function; `convert` turns its return value into the output (the HTTP response) and
        counts as part of the invocation, as output binding in the worker does."""
        # A separate task, shielded: if the caller is cancelled (client gone, timer stopped) the
        # invocation still finishes and is still counted by drain().
        task = asyncio.get_running_loop().create_task(self._run(spec, binding, reason, convert))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return await asyncio.shield(task)

    async def _run(self, spec: FunctionSpec, binding: Any, reason: str,
                   convert: Callable[[Any], Any] | None) -> Outcome:
        invocation_id = str(uuid.uuid4())
        faults.reached("function.invoked", spec.name)
        kwargs = {spec.arg_name: binding}
        if spec.wants_context:
            kwargs["context"] = InvocationContext(invocation_id, spec)
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, invocation_id)
        started = time.perf_counter()
        try:
            if spec.is_async:
                result = await spec.func(**kwargs)
            else:
                result = await asyncio.get_running_loop().run_in_executor(
                    self._pool, functools.partial(spec.func, **kwargs))
            if result is not None and not spec.has_return:
                raise RuntimeError(f"function {spec.name!r} without a $return binding returned a non-None value")
            if convert is not None:
                result = convert(result)
        except Exception as exc:
            duration = (time.perf_counter() - started) * 1000
            log.error("Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms)", spec.name, invocation_id,
                      duration, exc_info=exc)
            return Outcome(invocation_id, error=exc, duration_ms=duration)
        duration = (time.perf_counter() - started) * 1000
        log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)", spec.name, invocation_id,
                 duration)
        return Outcome(invocation_id, result=result, duration_ms=duration)

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for running invocations (a thread cannot be interrupted)."""
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=timeout)
            if pending:
                log.warning("stopping with %d invocation(s) still running", len(pending))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
