"""`mlops runs`: the MLflow runs of the training jobs (one run per Azure ML job, its steps as child runs), listed
or one in detail, from the local stack's tracking store (<home>/aml/mlruns), MLFLOW_TRACKING_URI, or
--tracking-uri. cli.py registers the command; mlflow is imported only when it runs (it costs about a second)."""
from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlparse

import typer
from rich.console import Console
from rich.markup import escape

from lifecycle.core.platform_values import MONITORING_EXPERIMENT
from mlops.runs_view import print_detail, runs_table

err = Console(stderr=True)

HEADLINE = {"classification": ("accuracy", "f1"), "regression": ("r2", "rmse")}
_PAGE = 500
HOME_HELP = ("the local stack's home, whose store to read (default as every command: MLOPS_HOME, else .mlops or the "
             "demo's; wins over MLFLOW_TRACKING_URI)")


class RunsError(Exception):
    """Bad input or an unusable store; the message says what to do, `code` is the exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Store:
    uri: str
    folder: Path | None          # a file store's folder
    local_stack: bool            # the local stack's own store (the default)


def runs(
    run: str = typer.Argument("", help="one run in detail: its job name, run id or the id's first 8 characters"),
    experiment: str | None = typer.Option(None, "--experiment", help=(
        f"only this experiment's runs (default: every experiment but {MONITORING_EXPERIMENT}, the monitoring passes)")),
    model: str | None = typer.Option(None, "--model", help="only the runs of this model (tag mlops.model_name)"),
    limit: int = typer.Option(25, "--limit", min=1, help="the newest N jobs"),
    all_: bool = typer.Option(False, "--all", help="also the pipeline steps' child runs, under their job's run"),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri",
                                            help="an MLflow tracking URI (file:, http(s):, azureml:); default: "
                                                 "MLFLOW_TRACKING_URI, else the local stack's <home>/aml/mlruns"),
    as_json: bool = typer.Option(False, "--json", help="print the full records as JSON on stdout (messages go to "
                                                       "stderr)"),
    home: Path | None = typer.Option(None, help=HOME_HELP),  # noqa: B008 (typer declares options as defaults)
    env: str | None = typer.Option(None, help="preprod | prod, for a home holding both environments"),
) -> None:
    """The MLflow runs of the training jobs: newest first, with model, trigger, status, start (UTC), duration,
    headline metrics, the gate's decision, the data and the run id; or one run in detail (params, all metrics,
    tags, artifacts and the registered model versions made from it).

    \b
    Exit code: 0 shown (also when no run exists yet), 1 the store cannot be read,
    2 bad input (an unknown run or experiment, an azureml: URI without the azureml-mlflow plugin, bad --env).
    """
    try:
        store = tracking_store(tracking_uri, home, env)
        if store.folder is not None and not store.folder.is_dir():
            # MLflow's file store would create an empty store here: say there is none yet instead
            if store.local_stack:
                err.print(f"no runs yet: the local stack keeps them at {escape(str(store.folder))}; start it with "
                          "[bold]mlops up[/] or [bold]mlops demo[/]", soft_wrap=True)
            else:
                err.print(f"no runs: no MLflow store at {escape(str(store.folder))}", soft_wrap=True)
            if as_json:
                print("[]")
            return
        client = _client(store)
        with _reading(store):
            if run:
                shown = detail(client, run, experiment)
            else:
                records = list_runs(client, experiment, model, limit, all_)
    except RunsError as error:
        err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(error.code) from None
    if run:
        if as_json:
            print(json.dumps(shown, indent=2, default=str))
        else:
            print_detail(Console(), shown)
    elif as_json:
        print(json.dumps(records, indent=2, default=str))
    elif not records:
        which = f" of model {model}" if model else ""
        err.print(f"no runs{which} in {escape(store.uri)}", soft_wrap=True)
    else:
        out = Console()
        out.print(runs_table(records, out.width))
        tops = sum(1 for r in records if not r["parent_run_id"])
        err.print(f"[dim]{tops} run{'s' if tops != 1 else ''} of {escape(store.uri)}, newest first (--limit "
                  f"{limit}); one in detail: mlops runs <run>[/]", soft_wrap=True)
    sys.stdout.flush()


# ---- the store -------------------------------------------------------------------------------------------------

def tracking_store(tracking_uri: str | None, home: Path | None, env: str | None) -> Store:
    """--tracking-uri, else --home's store, else MLFLOW_TRACKING_URI, else the local stack's store."""
    uri = tracking_uri or (None if home is not None else os.environ.get("MLFLOW_TRACKING_URI"))
    if uri:
        return _store(uri, local_stack=False)
    folder = _stack_home(home, env)
    return Store(folder.as_uri(), folder, local_stack=True)


def _stack_home(home: Path | None, env: str | None) -> Path:
    """The local stack's tracking folder, the stack chosen by the rule of every command (mlops/homes.py)."""
    from emulator.home import StackHome
    from mlops.homes import HomeError, resolve
    try:
        resolved = resolve(home, env)
    except HomeError as error:
        if str(error).startswith("--env"):
            raise RunsError(str(error)) from None
        chosen = StackHome.default()              # no stack has run: its store would be the default home's
    else:
        chosen = resolved.home
        if resolved.note:
            err.print(f"[dim]{escape(resolved.note)}[/]", soft_wrap=True)
    return chosen.mlruns


def _store(uri: str, local_stack: bool) -> Store:
    scheme = urlparse(uri).scheme.lower()
    if scheme == "azureml" and not _has_azureml_mlflow():
        raise RunsError(f"{uri}: an Azure ML tracking URI needs the azureml-mlflow plugin: pip install azureml-mlflow "
                        "(or use the local stack's store: leave out --tracking-uri and MLFLOW_TRACKING_URI)")
    if scheme == "file":
        return Store(uri, Path(urlparse(uri).path), local_stack)
    if len(scheme) <= 1:      # a plain path (or a Windows drive letter)
        folder = Path(uri).expanduser().resolve()
        return Store(folder.as_uri(), folder, local_stack)
    return Store(uri, None, local_stack)


def _has_azureml_mlflow() -> bool:
    try:
        return find_spec("azureml.mlflow") is not None
    except ModuleNotFoundError:
        return False


def _client(store: Store):
    from mlflow import MlflowClient
    if store.folder is not None:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")   # mlflow-skinny refuses a file store otherwise
    else:
        # a server that does not answer: say so in seconds, not after MLflow's 7 retries (minutes); the
        # environment can still ask for more
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    return MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)


@contextmanager
def _reading(store: Store):
    """An MLflow error while reading (a server that does not answer, a damaged store) as exit 1, said in a line."""
    from mlflow.exceptions import MlflowException
    try:
        yield
    except MlflowException as error:
        raise RunsError(f"cannot read the tracking store {store.uri}: {_first_line(error)}", code=1) from None


def _experiments(client, name: str | None) -> dict[str, str]:
    """id → name of the experiments to read: --experiment's, or all active ones."""
    if name:
        found = client.get_experiment_by_name(name)
        if found is None:
            names = ", ".join(sorted(e.name for e in client.search_experiments())) or "none"
            raise RunsError(f"--experiment {name}: no such experiment in the store (its experiments: {names})")
        return {found.experiment_id: found.name}
    return {e.experiment_id: e.name for e in client.search_experiments(max_results=1000)}


# ---- the records -----------------------------------------------------------------------------------------------

def list_runs(client, experiment: str | None, model: str | None, limit: int, with_children: bool) -> list[dict]:
    """The newest `limit` job runs (of `model`), each followed by its child runs when `with_children`. Without
    `experiment`, every experiment's but the monitoring passes' (one an hour would bury the training runs)."""
    experiments = _experiments(client, experiment)
    if experiment is None:
        experiments = {k: name for k, name in experiments.items() if name != MONITORING_EXPERIMENT}
    if not experiments:
        return []
    tops: list = []
    children: dict[str, list] = {}
    token = None
    # newest first; a step's child run starts after its job's run, so it is seen before its parent
    while len(tops) < limit:
        page = client.search_runs(list(experiments), max_results=_PAGE, order_by=["attributes.start_time DESC"],
                                  page_token=token)
        for r in page:
            parent = r.data.tags.get("mlflow.parentRunId")
            if parent:
                children.setdefault(parent, []).append(r)
            elif not model or r.data.tags.get("mlops.model_name") == model:
                tops.append(r)
        token = page.token
        if not token:
            break
    shown = []
    for r in tops[:limit]:
        steps = sorted(children.get(r.info.run_id, []), key=lambda c: c.info.start_time or 0)
        shown.append({**record(r, experiments), "child_runs": [c.info.run_id for c in steps]})
        if with_children:
            shown.extend({**record(c, experiments), "child_runs": []} for c in steps)
    return shown


def record(run, experiments: dict[str, str]) -> dict:
    """Everything about one run, JSON-ready; the table and the detail view read from it."""
    info, tags = run.info, dict(run.data.tags)
    start, end = info.start_time, info.end_time
    duration = run.data.metrics.get("compute.duration_seconds")
    if duration is None and start and end:
        duration = (end - start) / 1000
    return {
        "run_id": info.run_id, "run_name": info.run_name or tags.get("mlflow.runName", ""),
        "experiment": experiments.get(info.experiment_id, info.experiment_id), "experiment_id": info.experiment_id,
        "status": info.status, "start": _iso(start), "end": _iso(end), "duration_seconds": duration,
        "parent_run_id": tags.get("mlflow.parentRunId"), "model": tags.get("mlops.model_name"),
        "trigger": tags.get("mlops.trigger"), "data": tags.get("mlops.data"), "gate": tags.get("mlops.gate"),
        "registered_version": tags.get("mlops.registered_version"),
        "headline": headline(run.data.metrics, tags.get("mlops.task") or run.data.params.get("task")),
        "params": dict(run.data.params), "metrics": dict(run.data.metrics), "tags": tags,
    }


def headline(metrics: dict[str, float], task: str | None) -> dict[str, float]:
    """accuracy and f1 of a classifier, r2 and rmse of a regressor: those of them that were logged."""
    names = HEADLINE.get(task or "") or (*HEADLINE["classification"], *HEADLINE["regression"])
    return {n: metrics[n] for n in names if n in metrics}


def detail(client, key: str, experiment: str | None) -> dict:
    """One run with its artifacts (top level), child runs and the registered model versions made from it."""
    from mlflow.exceptions import MlflowException
    experiments = _experiments(client, experiment)
    run = find_run(client, key, experiments)
    shown = record(run, experiments)
    try:
        shown["artifacts"] = [{"path": a.path, "is_dir": a.is_dir, "size": a.file_size}
                              for a in client.list_artifacts(run.info.run_id)]
    except (MlflowException, OSError) as error:
        shown["artifacts"] = []
        shown["artifacts_error"] = _first_line(error)
    try:
        versions = client.search_model_versions(f"run_id='{run.info.run_id}'")
        shown["model_versions"] = [{"name": v.name, "version": str(v.version), "source": v.source,
                                    "status": v.status, "created": _iso(v.creation_timestamp)} for v in versions]
    except MlflowException as error:            # a store without a model registry
        shown["model_versions"] = []
        shown["model_versions_error"] = _first_line(error)
    steps = client.search_runs(list(experiments), f"tags.`mlflow.parentRunId` = '{run.info.run_id}'",
                               order_by=["attributes.start_time ASC"])
    shown["child_runs"] = [record(c, experiments) for c in steps]
    return shown


def find_run(client, key: str, experiments: dict[str, str]):
    """The run whose id, id prefix (8 or more characters) or run name (the job name) is `key`; RunsError if none
    or several (a job's run before its steps' runs of the same name)."""
    from mlflow.exceptions import MlflowException
    try:
        run = client.get_run(key)               # in Azure ML, the job name is the run id
        if run.info.experiment_id in experiments and run.info.lifecycle_stage == "active":
            return run
    except MlflowException:
        pass
    matches, token = [], None
    while True:
        page = client.search_runs(list(experiments), max_results=_PAGE, page_token=token)
        matches += [r for r in page
                    if r.info.run_name == key or (len(key) >= 8 and r.info.run_id.startswith(key))]
        token = page.token
        if not token:
            break
    tops = [r for r in matches if "mlflow.parentRunId" not in r.data.tags]
    found = tops or matches
    if not found:
        where = f" in experiment {next(iter(experiments.values()))}" if len(experiments) == 1 else ""
        raise RunsError(f"no run named {key!r} or with that id{where}: `mlops runs` lists them")
    if len(found) > 1:
        which = "; ".join(f"{r.info.run_id[:8]} ({experiments.get(r.info.experiment_id, '?')})" for r in found[:6])
        raise RunsError(f"{len(found)} runs are named {key!r}: {which}; give the run id")
    return found[0]


def _iso(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if ms else None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
