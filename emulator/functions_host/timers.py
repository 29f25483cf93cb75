"""Timer triggers: one asyncio task per timer function, firing on its NCRONTAB schedule in UTC.

As in the host, one timer never runs twice at once: the next occurrence is computed after an invocation
ends, so ticks that fall while it still runs are skipped (the host's singleton lock has the same effect).
A failing invocation is logged and recorded; the timer keeps going."""
from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

from croniter import croniter

from emulator.timeline import Delivery, Timeline

from .bindings import timer_request
from .invoker import Invoker
from .loader import FunctionSpec

log = logging.getLogger("emulator.functions_host")
# A tick that starts later than this after its scheduled time is reported as past due.
PAST_DUE_AFTER = timedelta(seconds=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Timer:
    def __init__(self, spec: FunctionSpec, invoker: Invoker, timeline: Timeline | None) -> None:
        assert spec.schedule is not None
        self.spec = spec
        self._invoker = invoker
        self._timeline = timeline
        self._last: datetime | None = None

    def next_after(self, moment: datetime) -> datetime:
        return croniter(self.spec.schedule, moment, second_at_beginning=True).get_next(datetime)

    async def run(self) -> None:
        """The timer's life: optionally fire at start-up, then on every occurrence until cancelled."""
        if self.spec.run_on_startup:
            await self._fire(scheduled=None)
        while True:
            scheduled = self.next_after(utcnow())
            await _sleep_until(scheduled)
            await self._fire(scheduled)

    async def _fire(self, scheduled: datetime | None) -> None:
        try:
            await self._invoke(scheduled)
        except Exception:          # e.g. the timeline file became unwritable: keep the timer alive
            log.exception("timer %r: tick failed", self.spec.name)

    async def _invoke(self, scheduled: datetime | None) -> None:
        now = utcnow()
        past_due = scheduled is not None and now - scheduled > PAST_DUE_AFTER
        request = timer_request(past_due=past_due, last=self._last, next_=self.next_after(now), now=now)
        reason = "Timer fired at startup" if scheduled is None else f"Timer fired at {now.isoformat()}"
        outcome = await self._invoker.invoke(self.spec, request, reason=reason)
        self._last = now
        if self._timeline is not None:
            self._timeline.record(Delivery(
                event_id=str(uuid.uuid4()), event_type="Timer", subject=self.spec.schedule or "",
                function=self.spec.name, attempt=1, outcome="delivered" if outcome.ok else "failed",
                source="timer", detail=outcome.detail, duration_ms=round(outcome.duration_ms, 3)))


async def _sleep_until(moment: datetime) -> None:
    # The loop's clock and the wall clock drift apart a little; re-check rather than fire early.
    while (delay := (moment - utcnow()).total_seconds()) > 0:
        await asyncio.sleep(delay)


class Timers:
    def __init__(self, specs: list[FunctionSpec], invoker: Invoker, timeline: Timeline | None) -> None:
        self._timers = [Timer(spec, invoker, timeline) for spec in specs]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for timer in self._timers:
            log.info("timer %r: schedule %r, next run %s", timer.spec.name, timer.spec.schedule,
                     timer.next_after(utcnow()).isoformat())
            self._tasks.append(asyncio.get_running_loop().create_task(timer.run(),
                                                                      name=f"timer:{timer.spec.name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
