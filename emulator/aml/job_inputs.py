"""A local job's inputs, as Azure ML's download mode gives them: blob folders and blobs fetched into the job's
folder (of a training window only its files), the window's holdout manifest, and the checks of a training
request's window before anything runs."""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient

from emulator.aml.team_pipelines import JobError

TASKS = ("classification", "regression")


async def download(connection_string: str, url: str, target: Path, input_name: str = "data", required: bool = True,
               files: list[str] | None = None) -> Path:
    """Fetch a blob folder (URL ending in '/') or a single blob from storage into the job's inputs. A folder
    not required to hold anything (a command job's input) may be empty, as a mount of it would be. `files`
    (a training window): only those paths under the folder (a path ending in '/': everything under it)."""
    parts = urlparse(url)
    segments = unquote(parts.path).lstrip("/").split("/", 2)   # account / container / path
    if len(segments) < 2:
        raise JobError(f"input {input_name}: {url} is not a blob or folder URL")
    container, prefix = segments[1], segments[2] if len(segments) > 2 else ""
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    async with BlobServiceClient.from_connection_string(connection_string) as service:
        client = service.get_container_client(container)
        folder = prefix.endswith("/") or not prefix
        try:
            if folder and files:
                names = await _window_blobs(client, url, prefix, files)
            else:
                names = [b.name async for b in client.list_blobs(name_starts_with=prefix)] if folder else [prefix]
        except ResourceNotFoundError:
            names = []                         # no such container
        if folder and not names and not required:
            return target
        for name in names:
            local = target / (name[len(prefix):] if folder else name.rsplit("/", 1)[-1])
            local.parent.mkdir(parents=True, exist_ok=True)
            stream = await client.download_blob(name)
            local.write_bytes(await stream.readall())
            count += 1
    if count == 0:
        raise JobError(f"input {input_name}: nothing found at {url}")
    return target


# -- the training window ---------------------------------------------------------------------------------

def holdout_manifest(folder: Path, files: list[str]) -> Path:
    """The window's new files, where train.py and split.py draw the holdout from (--holdout-files)."""
    path = folder / "inputs" / "holdout_files.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{file}\n" for file in files))
    return path


def check_window(name: str, spec: dict) -> None:
    files = spec.get("data_files") or []
    for key in ("data_files", "holdout_files"):
        listed = spec.get(key) or []
        if not isinstance(listed, list) or not all(isinstance(f, str) for f in listed):
            raise JobError(f"job {name}: {key} must be a list of paths under the data folder")
        for file in listed:
            if file.startswith("/") or "\\" in file or ".." in file.split("/"):
                raise JobError(f"job {name}: {key} entry {file!r} is not a path under the data folder")
    if files and folder_and_window(spec["data"], [])[1]:
        raise JobError(f"job {name}: data_files names files under a folder, but data {spec['data']} is one file")
    if spec.get("task") and spec["task"] not in TASKS:
        raise JobError(f"job {name}: task {spec['task']!r} is not one of {', '.join(TASKS)}")
    column, days = spec.get("window_column") or "", spec.get("window_days") or 0
    if not isinstance(column, str) or isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise JobError(f"job {name}: a row window is window_column, a column name, and window_days, a number of "
                       f"days, not {column!r} and {days!r}")
    if bool(column) != bool(days):
        raise JobError(f"job {name}: a row window is a date column and a number of days: give window_column and "
                       f"window_days together (window_column {column!r}, window_days {days})")


def folder_and_window(url: str, files: list[str]) -> tuple[str, list[str]]:
    """A data URL as (folder URL, the files of it to read): a single blob is its folder and its own name."""
    segments = unquote(urlparse(url).path).lstrip("/").split("/", 2)   # account / container / path
    if len(segments) < 3 or not segments[2] or url.endswith("/"):
        return (url if url.endswith("/") else url + "/"), files
    folder, _, file = url.rpartition("/")
    return folder + "/", [unquote(file)]


async def _window_blobs(client: Any, url: str, prefix: str, files: list[str]) -> list[str]:
    """The blobs of a training window: each path under the folder, a path ending in '/' (or '') all under it."""
    listed = [b.name async for b in client.list_blobs(name_starts_with=prefix)]
    names: list[str] = []
    for file in files:
        found = [n for n in listed if n == prefix + file or ((not file or file.endswith("/"))
                                                             and n.startswith(prefix + file))]
        if not found:
            raise JobError(f"input data: {url}{file} does not exist (the training window names it)")
        names += [n for n in found if n not in names]
    return names
