"""The local Event Grid broker: fan-out to subscriptions, durable at-least-once delivery to the
Functions host's Event Grid webhook, Azure's retry schedule, dead-lettering to blob storage.

Every (subscription, event) pair is first written to an Azurite queue, then delivered straight from
memory. The queue message stays invisible while this process drives the delivery (its visibility
timeout always covers the next attempt), so it is the durable record: if the process stops, the
message becomes visible again and the recovery poller delivers it. Success deletes the message.

Azurite saves its data only every few seconds, so a kill can lose the queue message of an event accepted
just before it, or what a function wrote while handling one, which Azure never would. The archive (every
accepted event, in a file, written before the publisher is answered) covers that window: after a start
that did not follow a clean stop, the events archived in the last JOURNAL_SECONDS of the previous run are
delivered again, delivered or not. At least once, as always: handlers are idempotent."""
from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from emulator import faults
from emulator.eventgrid import retry
from emulator.eventgrid.routing import RoutingTable, Subscription
from emulator.eventgrid.schema import CLOUDEVENTS_SCHEMA, WireEvent
from emulator.timeline import Delivery, Timeline, utcnow_iso
from lifecycle.core.times import parse_time

log = logging.getLogger("emulator.eventgrid")

SPOOL_CONTAINER = "eventgrid-spool"
JOURNAL_SECONDS = 30.0        # more than Azurite's 5 s between saves
# Queue messages hold 64 KiB; larger events (up to Event Grid's 1 MB) go to a blob, the message points at it.
MAX_INLINE_CHARS = 48_000


@dataclass(frozen=True)
class GridOptions:
    retry_scale: float = 1.0          # compresses Azure's retry schedule for local runs
    delivery_timeout: float = 30.0    # Event Grid waits 30 s for an answer
    poll_interval: float = 1.0        # recovery poller: how often to look for messages left behind
    max_concurrent: int = 64


@dataclass
class Pending:
    """One event on its way to one subscription; what the queue message holds."""
    subscription: str
    topic: str
    event: WireEvent
    published: str = field(default_factory=utcnow_iso)
    attempts: int = 0
    last_outcome: str = ""
    last_status: int | None = None
    last_attempt: str = ""
    spooled: str = ""                 # blob holding this message when it is too large for the queue
    message_id: str = ""
    pop_receipt: str = ""

    def to_message(self) -> str:
        body = asdict(self)
        body["event"] = self.event.to_json()
        del body["message_id"], body["pop_receipt"]
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_message(cls, text: str, message_id: str, pop_receipt: str) -> Pending:
        body = json.loads(text)
        body["event"] = WireEvent.from_json(body["event"])
        return cls(**body, message_id=message_id, pop_receipt=pop_receipt)


def queue_name(subscription: str, prefix: str = "") -> str:
    """The Azurite queue of a subscription; `prefix` keeps apart the grids of environments sharing one Azurite."""
    name = re.sub(r"[^a-z0-9-]", "-", f"{prefix}-{subscription}".lower() if prefix else subscription.lower())
    return re.sub(r"-{2,}", "-", f"eg-{name.strip('-')}")[:63].rstrip("-")


class EventGrid:
    def __init__(self, table: RoutingTable, connection_string: str, *, topic_ids: dict[str, str],
                 timeline: Timeline | None = None, options: GridOptions = GridOptions(),
                 archive: Path | None = None, prefix: str = "") -> None:
        """`prefix`: of this grid's queues and spool container, so that the grids of several environments can
        share one Azurite (each environment's storage account in Azure)."""
        self.table = table
        self.prefix = prefix
        self._spool = f"{prefix}-{SPOOL_CONTAINER}" if prefix else SPOOL_CONTAINER
        self.archive = archive            # every accepted event, as JSON lines: what `replay` sends again
        self.topic_ids = topic_ids
        self.timeline = timeline
        self.options = options
        self._connection_string = connection_string
        self._functions_url: str | None = None
        self._functions_key = ""
        self._functions_ready = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._inflight: set[str] = set()
        self._by_name = {s.name: s for s in table.subscriptions}
        self._closing = False

    # -- life cycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._limit = asyncio.Semaphore(self.options.max_concurrent)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.options.delivery_timeout))
        self._queues_service = QueueServiceClient.from_connection_string(self._connection_string)
        self._blobs = BlobServiceClient.from_connection_string(self._connection_string)
        self._queues: dict[str, QueueClient] = {}
        for sub in self.table.subscriptions:
            queue = self._queues_service.get_queue_client(queue_name(sub.name, self.prefix))
            await _ensure(queue.create_queue())
            self._queues[sub.name] = queue
        containers = {self._spool} | {s.dead_letter_container for s in self.table.subscriptions
                                          if s.dead_letter_container}
        for container in containers:
            await _ensure(self._blobs.create_container(container))
        await self._requeue_unsaved()
        self._spawn(self._recover_forever())

    def attach_functions(self, url: str, key: str) -> None:
        """Where deliveries go: the Functions host's Event Grid webhook. Until then they wait."""
        self._functions_url, self._functions_key = url.rstrip("/"), key
        self._functions_ready.set()

    async def stop(self) -> None:
        self._closing = True
        if self.archive is not None:           # Azurite saves what it holds as it stops after this
            self._append({"stopped": time.time()})
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.close()
        for queue in self._queues.values():
            await queue.close()
        await self._queues_service.close()
        await self._blobs.close()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- publishing -------------------------------------------------------------------------
    async def publish(self, topic: str, events: list[WireEvent]) -> None:
        """Durably accept events for every matching subscription; returns once they are queued."""
        pending = []
        for event in events:
            faults.reached("event.published", event.event_type)
            subscriptions = self.table.matching(topic, event)
            if not subscriptions:
                self._record(event, "", 0, "unmatched", "no subscription's filter matched")
            pending += [Pending(sub.name, topic, event) for sub in subscriptions]
        await asyncio.gather(*(self._enqueue(p) for p in pending))
        if self.archive is not None:
            self._archive(topic, events)
        for p in pending:
            self._spawn(self._deliver(p))

    def _archive(self, topic: str, events: list[WireEvent]) -> None:
        now = time.time()
        for event in events:
            self._append({"at": now, "topic": topic, "event": event.to_json()})

    def _append(self, entry: dict) -> None:
        self.archive.parent.mkdir(parents=True, exist_ok=True)
        with self.archive.open("a", encoding="utf-8") as archive:
            archive.write(json.dumps(entry, separators=(",", ":")) + "\n")

    async def _still_there(self, event: WireEvent) -> bool:
        """A BlobCreated whose blob the kill took with it (Azurite had not saved it) announces nothing."""
        blob_created = event.event_type == "Microsoft.Storage.BlobCreated"
        match = _BLOB_SUBJECT.match(event.subject or "") if blob_created else None
        if match is None:
            return True
        try:
            properties = await self._blobs.get_blob_client(match[1], match[2]).get_blob_properties()
        except ResourceNotFoundError:
            return False
        data = event.data if isinstance(event.data, dict) else {}
        return str(data.get("eTag", "")).strip('"') in ("", properties.etag.strip('"'))

    async def _requeue_unsaved(self) -> None:
        """After a kill: the events accepted in the previous run's last seconds, again."""
        entries = _tail(self.archive) if self.archive is not None and self.archive.exists() else []
        if not entries or "stopped" in entries[-1]:
            return
        last = entries[-1].get("at", 0)
        pending = []
        for entry in (e for e in entries if "event" in e and e.get("at", 0) >= last - JOURNAL_SECONDS):
            event = WireEvent.from_json(entry["event"])
            if not await self._still_there(event):
                continue
            pending += [Pending(sub.name, entry["topic"], event) for sub in self.table.matching(entry["topic"], event)]
        if pending:
            log.warning("delivering %d events again: accepted in the last seconds before the last run was killed, "
                        "their queue messages or their effects may not have been saved", len(pending))
            await asyncio.gather(*(self._enqueue(p) for p in pending))
            for p in pending:
                self._spawn(self._deliver(p))            # waits for the Functions host to attach

    async def _enqueue(self, p: Pending) -> None:
        text = await self._message_text(p)
        sent = await self._queues[p.subscription].send_message(
            text, visibility_timeout=self._hold_seconds(0),
            time_to_live=self._by_name[p.subscription].event_ttl_minutes * 60)
        p.message_id, p.pop_receipt = sent.id, sent.pop_receipt
        self._inflight.add(p.message_id)

    async def _message_text(self, p: Pending) -> str:
        text = p.to_message()
        if len(text) <= MAX_INLINE_CHARS:
            return text
        if not p.spooled:
            p.spooled = f"{p.subscription}/{uuid.uuid4()}.json"
            text = p.to_message()
        await self._blobs.get_blob_client(self._spool, p.spooled).upload_blob(text, overwrite=True)
        return json.dumps({"spooled": p.spooled})

    def _hold_seconds(self, delay: float) -> int:
        # Keep the message hidden for the wait plus one full delivery attempt, whole seconds as the queue wants.
        return math.ceil(delay + self.options.delivery_timeout + 5)

    # -- delivery ---------------------------------------------------------------------------
    async def _deliver(self, p: Pending) -> None:
        sub = self._by_name[p.subscription]
        while not self._closing:
            await self._functions_ready.wait()
            async with self._limit:
                status, reason, elapsed = await self._attempt(sub, p)
            p.attempts += 1
            p.last_status, p.last_outcome, p.last_attempt = status, retry.outcome_name(status), utcnow_iso()
            if status is not None and retry.is_success(status):
                self._record(p.event, sub.function, p.attempts, "delivered", "", status, elapsed, sub.name)
                await self._finish(p)
                return
            final = self._final_reason(sub, p, status)
            if final:
                await self._dead_letter(sub, p, final, reason)
                return
            delay = retry.delay_after(p.attempts, self.options.retry_scale)
            self._record(p.event, sub.function, p.attempts, "failed",
                         f"{reason}; retry in {delay:.1f} s", status, elapsed, sub.name)
            await self._reschedule(p, delay)
            await asyncio.sleep(delay)

    async def _attempt(self, sub: Subscription, p: Pending) -> tuple[int | None, str, float]:
        event = p.event
        cloud = event.schema == CLOUDEVENTS_SCHEMA
        body = json.dumps(event.body if cloud else [event.body])
        headers = {
            "Content-Type": "application/cloudevents+json; charset=utf-8" if cloud else "application/json",
            "aeg-event-type": "Notification",
            "aeg-subscription-name": sub.name.upper(),
            "aeg-delivery-count": str(p.attempts),
            "aeg-data-version": str(event.body.get("dataVersion", "")),
            "aeg-metadata-version": "1",
        }
        url = f"{self._functions_url}/runtime/webhooks/eventgrid"
        params = {"functionName": sub.function, "code": self._functions_key}
        started = time.perf_counter()
        try:
            async with self._http.post(url, data=body, headers=headers, params=params) as response:
                text = await response.text()
                elapsed = (time.perf_counter() - started) * 1000
                reason = "" if response.status < 300 else f"HTTP {response.status}: {text.strip()[:500]}"
                return response.status, reason, elapsed
        except TimeoutError:
            elapsed = (time.perf_counter() - started) * 1000
            return 408, f"no answer within {self.options.delivery_timeout:.0f} s", elapsed
        except aiohttp.ClientError as error:
            return None, f"could not reach the function: {error}", (time.perf_counter() - started) * 1000

    def _final_reason(self, sub: Subscription, p: Pending, status: int | None) -> str:
        if status in retry.NOT_RETRIED:
            return f"The function answered {status} ({retry.outcome_name(status)}), which Event Grid does not retry"
        if p.attempts >= sub.max_delivery_attempts:
            return "MaxDeliveryAttemptsExceeded"
        published = parse_time(p.published)
        next_try = datetime.now(UTC) + timedelta(seconds=retry.delay_after(p.attempts, self.options.retry_scale))
        if next_try - published > timedelta(minutes=sub.event_ttl_minutes):
            return "TimeToLiveExceeded"
        return ""

    async def _reschedule(self, p: Pending, delay: float) -> None:
        updated = await self._queues[p.subscription].update_message(
            p.message_id, p.pop_receipt, content=await self._message_text(p),
            visibility_timeout=self._hold_seconds(delay))
        p.pop_receipt = updated.pop_receipt

    async def _finish(self, p: Pending) -> None:
        try:
            await self._queues[p.subscription].delete_message(p.message_id, p.pop_receipt)
        except ResourceNotFoundError:
            pass  # already gone: a replayed recovery raced us; delivery is at least once anyway
        if p.spooled:
            await _ensure_gone(self._blobs.get_blob_client(self._spool, p.spooled).delete_blob())
        self._inflight.discard(p.message_id)

    async def _dead_letter(self, sub: Subscription, p: Pending, reason: str, last_error: str) -> None:
        if sub.dead_letter_container:
            record = dict(p.event.body)
            record.update({
                "deadLetterReason": reason,
                "deliveryAttempts": p.attempts,
                "lastDeliveryOutcome": p.last_outcome,
                "lastHttpStatusCode": p.last_status or 0,
                "lastDeliveryError": last_error,
                "publishTime": p.published,
                "lastDeliveryAttemptTime": p.last_attempt,
            })
            now = datetime.now(UTC)
            name = f"{p.topic}/{sub.name}/{now:%Y/%m/%d/%H}/{uuid.uuid4()}.json"
            await self._blobs.get_blob_client(sub.dead_letter_container, name).upload_blob(
                json.dumps([record], indent=2), overwrite=False)
            detail = f"{reason}; last error: {last_error}; kept in {sub.dead_letter_container}/{name}"
            outcome = "dead-lettered"
        else:
            detail, outcome = f"{reason}; last error: {last_error}; no dead-letter destination: dropped", "dropped"
        self._record(p.event, sub.function, p.attempts, outcome, detail, p.last_status, None, sub.name)
        await self._finish(p)

    # -- recovery of messages left by an earlier run ------------------------------------------
    async def _recover_forever(self) -> None:
        while True:
            await self._functions_ready.wait()
            for name, queue in self._queues.items():
                try:
                    await self._recover(name, queue)
                except Exception:  # keep polling; Azurite restarts or hiccups are transient
                    log.exception("recovery poll of %s failed", name)
            await asyncio.sleep(self.options.poll_interval)

    async def _recover(self, name: str, queue: QueueClient) -> None:
        async for message in queue.receive_messages(max_messages=32, visibility_timeout=self._hold_seconds(0)):
            if message.id in self._inflight:
                continue
            text = message.content
            spooled = json.loads(text).get("spooled")
            if spooled:
                blob = self._blobs.get_blob_client(self._spool, spooled)
                text = (await (await blob.download_blob()).readall()).decode()
            p = Pending.from_message(text, message.id, message.pop_receipt)
            self._inflight.add(p.message_id)
            self._spawn(self._deliver(p))

    def _record(self, event: WireEvent, function: str, attempt: int, outcome: str, detail: str = "",
                status: int | None = None, elapsed: float | None = None, subscription: str = "") -> None:
        if self.timeline is None:
            return
        self.timeline.record(Delivery(
            event_id=event.id, event_type=event.event_type, subject=event.subject or "", function=function,
            attempt=attempt, outcome=outcome, detail=detail, status=status,
            duration_ms=None if elapsed is None else round(elapsed, 2), source="eventgrid",
            subscription=subscription))


_BLOB_SUBJECT = re.compile(r"^/blobServices/default/containers/([^/]+)/blobs/(.+)$")


def _tail(path: Path, size: int = 4 * 2**20) -> list[dict]:
    """The archive's entries in its last `size` bytes (whole lines only)."""
    total = path.stat().st_size
    with path.open("rb") as archive:
        archive.seek(max(0, total - size))
        lines = archive.read().decode("utf-8", errors="replace").splitlines()
    if total > size:
        lines = lines[1:]                # the first line is cut
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue                     # a line a kill cut short
    return entries


async def _ensure(create) -> None:
    try:
        await create
    except ResourceExistsError:
        pass


async def _ensure_gone(delete) -> None:
    try:
        await delete
    except ResourceNotFoundError:
        pass
