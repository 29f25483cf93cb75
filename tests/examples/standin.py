"""What the tests of teams' training jobs share: our split and evaluate components with the scripts they run
(training/split.py and training/evaluate.py once they exist; until then the stand-ins in steps/, behind the
same component specs), and a real table in Azurite."""
from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

from emulator.aml.jobs import LocalJobs
from emulator.aml.team_pipelines import COMPONENTS

ROOT = Path(__file__).resolve().parents[2]
STEPS = Path(__file__).with_name("steps")


def components(tmp_path: Path) -> Path:
    """The folder of split.yml and evaluate.yml to run: the project's own when its scripts exist, else copies
    of the project's component specs beside the stand-in scripts (the specs' code: is their parent folder)."""
    if all((COMPONENTS.parent / f"{name}.py").exists() for name in ("split", "evaluate")):
        return COMPONENTS
    code = tmp_path / "training"
    (code / "components").mkdir(parents=True)
    for name in ("split", "evaluate"):
        shutil.copy(COMPONENTS / f"{name}.yml", code / "components" / f"{name}.yml")
        shutil.copy(STEPS / f"{name}.py", code / f"{name}.py")
    return code / "components"


def upload_table(connection_string: str, files: dict[str, bytes]) -> str:
    """Files into a fresh container of Azurite; returns the folder's blob URL (ending in '/')."""
    from azure.storage.blob import BlobServiceClient
    service = BlobServiceClient.from_connection_string(connection_string)
    container = f"data{uuid.uuid4().hex[:10]}"
    client = service.get_container_client(container)
    client.create_container()
    for name, body in files.items():
        client.upload_blob(f"drops/{name}", body)
    return f"{service.url.rstrip('/')}/{container}/drops/"


def breast_cancer_csv(rows: slice = slice(None)) -> bytes:
    """scikit-learn's breast cancer table (569 rows, 30 numeric features), its class as `label`."""
    from sklearn.datasets import load_breast_cancer
    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
    return frame.iloc[rows].to_csv(index=False).encode()


def run_job(jobs_root: Path, connection_string: str, spec: dict, components_folder: Path,
            timeout: float = 120) -> tuple[LocalJobs, list[str]]:
    """Submit one job to a LocalJobs and wait for its end; returns the jobs and the events published."""
    published: list[str] = []

    async def publish(events) -> None:
        published.extend(e.body["eventType"].rsplit(".", 1)[-1] + ":" + e.body["data"].get("runStatus", "")
                         for e in events)

    async def run() -> LocalJobs:
        jobs = LocalJobs(jobs_root, connection_string, publish, "t", resolve_model=lambda ref: None,
                         components=components_folder)
        jobs.submit(spec)
        async with asyncio.timeout(timeout):
            while jobs.get(spec["name"])["status"] not in ("Completed", "Failed", "Canceled"):
                await asyncio.sleep(0.1)
        await jobs.close()
        return jobs

    return asyncio.run(run()), published
