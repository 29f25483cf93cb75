"""Event latency on the local stack: publish (EventGridPublisherClient) -> function invoked, and
blob upload (azure-storage-blob) -> function invoked. Prints p50/p99.

Goals: p50 under 50 ms for published events; blob upload -> function under 2 s."""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from azure.core.credentials import AzureKeyCredential
from azure.eventgrid import EventGridEvent, EventGridPublisherClient
from azure.storage.blob import BlobServiceClient

from emulator.home import StackHome
from emulator.stack import Stack, StackOptions

HERE = Path(__file__).resolve().parent


def invoked(log: Path) -> dict[str, float]:
    if not log.exists():
        return {}
    return {key: float(t) for key, t in (line.split() for line in log.read_text().splitlines() if line)}


def wait_for(log: Path, keys: set[str], timeout: float = 60) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = invoked(log)
        if keys <= seen.keys():
            return seen
        time.sleep(0.05)
    raise SystemExit(f"only {len(keys & invoked(log).keys())} of {len(keys)} invocations arrived within {timeout} s")


def percentiles(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"p50 {statistics.median(ms):7.1f} ms   p99 {p99:7.1f} ms   max {ms[-1]:7.1f} ms   (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--blobs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "invocations.log"
        options = StackOptions(app="bench.latency_app:app", routing_table=HERE / "latency_routes.json",
                               extra_settings={"BENCH_LOG": str(log)})
        with Stack(StackHome(Path(folder) / "stack"), options) as info:
            client = EventGridPublisherClient(info.eventgrid_endpoint, AzureKeyCredential(info.eventgrid_key))
            client.send([EventGridEvent(subject="warm-up", event_type="Bench.Ping", data={}, data_version="1")])
            time.sleep(0.5)
            sent: dict[str, float] = {}
            for i in range(args.events):
                event = EventGridEvent(id=str(uuid.uuid4()), subject=f"ping/{i}", event_type="Bench.Ping",
                                       data={"i": i}, data_version="1")
                sent[event.id] = time.time()
                client.send([event])
                time.sleep(0.005)
            seen = wait_for(log, set(sent))
            publish = [seen[k] - sent[k] for k in sent]

            service = BlobServiceClient.from_connection_string(info.storage_connection_string)
            container = service.get_container_client("bench")
            container.create_container()
            uploaded: dict[str, float] = {}
            for _ in range(args.blobs):
                name = f"{uuid.uuid4()}.csv"
                uploaded[name] = time.time()
                container.upload_blob(name, b"a,b\n1,2\n")
                time.sleep(0.3)
            seen = wait_for(log, set(uploaded))
            blob = [seen[k] - uploaded[k] for k in uploaded]
    publish_met = "met" if statistics.median(publish) < 0.05 else "NOT met"
    print(f"publish -> function   {percentiles(publish)}   goal p50 < 50 ms: {publish_met}")
    print(f"upload  -> function   {percentiles(blob)}   goal < 2 s: {'met' if max(blob) < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
