"""Model data collection for the local endpoints, in Azure ML's data collector layout:

    {container}/modelDataCollector/{endpoint}/{deployment}/{model_inputs|model_outputs}/{yyyy}/{MM}/{dd}/{HH}/{id}.jsonl

one CloudEvents-like JSON line per request, `data` holding the rows as records (what
azureml-ai-monitoring's Collector writes for a DataFrame), with the request id as correlation id and a
per-row `request_id` so ground truth can be joined later. The router hands each answered request over
with a deque append; bodies are parsed and written in batches off the hot path."""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict, deque
from datetime import UTC, datetime

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob.aio import BlobServiceClient

from lifecycle.core.times import iso

log = logging.getLogger("emulator.aml.collector")
REQUEST_ID = "request_id"


def rows_of(body: bytes) -> list[dict]:
    """The input rows of an Azure ML scoring body, as records; [] if it is not one."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    payload = doc.get("input_data", doc.get("data")) if isinstance(doc, dict) else None
    if isinstance(payload, dict) and isinstance(payload.get("columns"), list) and isinstance(payload.get("data"), list):
        columns = payload["columns"]
        return [dict(zip(columns, row)) for row in payload["data"] if isinstance(row, list)]
    if isinstance(payload, list):
        return [row for row in payload if isinstance(row, dict)]
    return []


def outputs_of(body: bytes, request_ids: list[str]) -> list[dict]:
    """score.py's answer as output records: prediction, probability_<class>, request_id."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    predictions = doc.get("predictions") if isinstance(doc, dict) else None
    if not isinstance(predictions, list):
        return []
    probabilities, classes = doc.get("probabilities"), doc.get("classes") or []
    records = []
    for i, prediction in enumerate(predictions):
        record = {"prediction": prediction}
        if isinstance(probabilities, list) and i < len(probabilities):
            record.update({f"probability_{c}": p for c, p in zip(classes, probabilities[i])})
        if i < len(request_ids):
            record[REQUEST_ID] = request_ids[i]
        records.append(record)
    return records


class DataCollector:
    def __init__(self, connection_string: str, container: str = "azureml", source_prefix: str = "",
                 flush_interval: float = 1.0) -> None:
        self._service = BlobServiceClient.from_connection_string(connection_string)
        self._container = self._service.get_container_client(container)
        self._source_prefix = source_prefix
        self._interval = flush_interval
        self._pending: deque = deque()
        self._task: asyncio.Task | None = None

    # the router's on_scored hook: called on the event loop for every answered request; only appends
    def __call__(self, endpoint: str, deployment: str, request_body: bytes, response_body: bytes, status: int,
                 latency_s: float, request_id: str) -> None:
        if status == 200:
            self._pending.append((time.time(), endpoint, deployment, request_body, response_body, request_id))

    async def start(self) -> None:
        try:
            await self._container.create_container()
        except ResourceExistsError:
            pass
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
        await self._service.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:   # storage hiccup: the records stay queued for the next flush
                log.exception("writing collected data failed")

    async def flush(self) -> int:
        batch = []
        while self._pending:
            batch.append(self._pending.popleft())
        if not batch:
            return 0
        # Parsing and writing the lines is CPU work: off the router's event loop.
        files = await asyncio.to_thread(self._files, batch)
        try:
            for folder, lines in files.items():
                await self._container.upload_blob(f"{folder}/{uuid.uuid4()}.jsonl", "".join(lines))
        except BaseException:   # a storage hiccup, or close() cancelling us mid-upload: keep the records
            self._pending.extendleft(reversed(batch))
            raise
        return len(batch)

    def _files(self, batch: list) -> dict[str, list[str]]:
        files: dict[str, list[str]] = defaultdict(list)
        for when, endpoint, deployment, request_body, response_body, request_id in batch:
            rows = rows_of(request_body)
            if not rows:
                continue
            ids = [str(r.get(REQUEST_ID) or (request_id if len(rows) == 1 else f"{request_id}:{i}"))
                   for i, r in enumerate(rows)]
            inputs = [{**r, REQUEST_ID: ids[i]} for i, r in enumerate(rows)]
            stamp = datetime.fromtimestamp(when, UTC)
            for collection, data in (("model_inputs", inputs), ("model_outputs", outputs_of(response_body, ids))):
                if data:
                    folder = f"modelDataCollector/{endpoint}/{deployment}/{collection}/{stamp:%Y/%m/%d/%H}"
                    files[folder].append(self._line(endpoint, deployment, collection, stamp, data, request_id))
        return files

    def _line(self, endpoint: str, deployment: str, collection: str, stamp: datetime, data: list,
              request_id: str) -> str:
        body = json.dumps(data, separators=(",", ":"), default=str)
        return json.dumps({
            "specversion": "1.0", "id": str(uuid.uuid4()),
            "source": f"{self._source_prefix}/onlineEndpoints/{endpoint}/deployments/{deployment}",
            "type": f"azureml.inference.{collection}", "datacontenttype": "application/json",
            "time": iso(stamp, "milliseconds"), "data": data,
            "path": "/score", "method": "POST", "contentrange": f"bytes 0-{len(body) - 1}/{len(body)}",
            "correlationid": request_id, "xrequestid": request_id, "modelversion": "default",
            "collectdatatype": "pandas.core.frame.DataFrame", "agent": "mlops-local-collector",
        }, separators=(",", ":"), default=str) + "\n"
