"""`make demo`: the lifecycle end to end on a fresh local stack, each step printed as it happens."""
from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.markup import escape

from emulator.home import StackHome
from emulator.stack import StackError, StackOptions

T = TypeVar("T")
MODELS_FILE = "mlops.yaml"
HOUSES = "house-prices"


class StepFailed(Exception):
    pass


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.2,
             console: Console | None = None) -> T:
    """Poll `probe` until it gives a value; with a console, a spinner says what it waits for and for how long."""
    started = time.monotonic()
    deadline = started + timeout
    with _waiting(console, what) as update:
        while time.monotonic() < deadline:
            value = probe()
            if value:
                return value
            update(time.monotonic() - started)
            time.sleep(interval)
    raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def _waiting(console: Console | None, what: str):
    """A Rich status line "waiting for <what> (12 s)" while the block runs; nothing without a console."""
    if console is None:
        yield lambda elapsed: None
        return
    with console.status(f"waiting for {what}") as status:
        yield lambda elapsed: status.update(f"waiting for {what} ({elapsed:.0f} s)")


def run_demo(console: Console, timeout: float, as_json: bool = False) -> int:
    """Two models' lifecycles in pre-production (mlops.yaml: a loan classifier trained by our train.py, a
    house-price regression trained by a team's pipeline), and each model preprod promotes reaching production
    through the registry. Before the stacks stop, each leaves its status in <home>/status.json, so that
    `mlops status`, `mlops events` and the dashboard show the run afterwards. With `as_json`, a summary of
    the run goes to stdout at the end (the steps went to `console`)."""
    from emulator.environments import Environments
    home = StackHome(StackHome.default().root / "demo")
    shutil.rmtree(home.root, ignore_errors=True)   # fresh stacks each run, beside any `mlops up`
    environments = Environments(home, StackOptions.from_env(extra_settings={"MLOPS_CONFIG": MODELS_FILE}))
    steps = Steps(console)
    failure = None
    started = time.monotonic()
    try:
        with console.status("starting the local stacks: prod, then preprod") as status:
            environments.start(progress=status.update)
        for name, info in environments.infos.items():
            steps.ok(f"{name} up ({len(info.functions)} functions), home {_relative(environments.homes[name].root)}")
            for what, url in (("storage", info.blob_endpoint), ("Event Grid", info.eventgrid_endpoint),
                              ("Functions", info.functions_url), ("Azure ML", info.aml_url)):
                console.print(f"    [dim]{what:<11}[/]{url}", soft_wrap=True)
        steps.ok(f"registry [bold]{environments.registry_name}[/] between them: preprod shares "
                 "each model that survives its canary, prod rolls it out under its own canary")
        chain = Chain(console, environments.infos["preprod"], environments.homes["preprod"], timeout, steps)
        chain.run()
        chain.production(environments.infos["prod"], environments.homes["prod"])
    except (StepFailed, StackError) as error:
        failure = str(error)
        console.print(f"[red]✗ {error}[/]", soft_wrap=True)
        for name, env_home in environments.homes.items():
            console.print(f"[dim]{name}: logs {env_home.logs}, timeline {env_home.timeline}, "
                          f"jobs {env_home.path('aml', 'jobs')}[/]", soft_wrap=True)
    finally:
        snapshots = {}
        if environments.infos:
            with console.status("stopping the local stacks: writing each one's status.json"):
                snapshots = _snapshots(environments, console)
        with console.status("stopping the local stacks"):
            environments.stop()
    if failure is None:
        console.print(f"[green]Demo finished[/] in {time.monotonic() - started:.0f} s.")
    _looking(console, home, snapshots)
    if as_json:
        print(json.dumps({
            "outcome": "failed" if failure else "finished", "error": failure,
            "seconds": round(time.monotonic() - started, 1), "home": str(home.root),
            "environments": {name: {"home": str(h.root), "timeline": str(h.timeline),
                                    "status": str(snapshots[name]) if name in snapshots else None}
                             for name, h in environments.homes.items()},
            "steps": steps.done}, indent=2))
    return 1 if failure else 0


def _snapshots(environments, console: Console) -> dict:
    """Each running environment's status, written to its home before the stacks stop."""
    from mlops.homes import write_snapshot
    written = {}
    for name, env_home in environments.homes.items():
        if name not in environments.infos:
            continue
        try:
            written[name] = write_snapshot(env_home)
        except Exception as error:     # noqa: BLE001  (the stacks must stop all the same)
            console.print(f"[yellow]could not write {name}'s status.json: {error}[/]", soft_wrap=True)
    return written


def _looking(console: Console, home: StackHome, snapshots: dict) -> None:
    """Where the demo's run is kept, and the commands that show it."""
    if not snapshots:
        return
    console.print(f"The demo's stacks have stopped; their records stay in [bold]{_relative(home.root)}[/] "
                  "(preprod/, prod/). Every command shows them until another stack runs:")
    for command, what in (("mlops status", "models, jobs, endpoints, rollouts, monitoring (preprod)"),
                          ("mlops status --env prod", "the same in production"),
                          ("mlops events", "the deliveries, timer ticks hidden (--ticks shows them)"),
                          ("mlops dashboard", "the web page"),
                          ("mlops report", "the monitoring report"),
                          ("mlops runs", "the training runs in MLflow: metrics, gate, registered version")):
        console.print(f"  [bold]{command:<24}[/] [dim]{what}[/]", soft_wrap=True)


def _relative(path) -> str:
    from pathlib import Path
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class Steps:
    """The demo's lines: each step printed with a tick (whole: a URL in it is never broken by a wrap), and kept
    for the JSON summary."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.done: list[str] = []

    def ok(self, message: str) -> None:
        from rich.table import Table
        from rich.text import Text
        plain = Text.from_markup(message).plain
        self.done.append(plain)
        if max(map(len, plain.split()), default=0) > self.console.width - 2:
            # a word (a URL, a path) wider than the terminal: one unbroken line, which the terminal wraps and a
            # copy gives back whole
            self.console.print(f"[green]✓[/] {message}", soft_wrap=True)
            return
        line = Table.grid()                    # wrapped at spaces, under the message (a hanging indent)
        line.add_column(width=2)
        line.add_column()
        line.add_row("[green]✓[/]", message)
        self.console.print(line)


class Chain:
    """Drives the demo through the lifecycle's own ports, as `mlops status` reads them."""

    def __init__(self, console: Console, info, home: StackHome, timeout: float, steps: Steps | None = None) -> None:
        from azure.storage.blob import BlobServiceClient

        from lifecycle.model_scope import for_model
        from mlops.local import local_platform
        self.console, self.info, self.timeout, self.home = console, info, timeout, home
        self.steps = steps or Steps(console)
        everything = local_platform(home)
        self.p = for_model(everything, everything.catalog[0].model.name)      # the loan classifier
        self.houses = for_model(everything, HOUSES)
        self.everything = everything
        self.data = BlobServiceClient.from_connection_string(info.storage_connection_string) \
            .get_container_client(self.p.policies.model.data_container)

    def ok(self, message: str) -> None:
        self.steps.ok(message)

    def wait(self, what: str, probe: Callable[[], T | None], timeout: float) -> T:
        return wait_for(what, probe, timeout, console=self.console)

    def run(self) -> None:
        from mlops.demo_data import house_csv, loan_csv
        self.data.create_container()
        self.upload("houses/2026-11-29/", [house_csv(1200, seed=1)])      # queued behind the loans' job
        version = self.drop("loans/2026-11-01/", [loan_csv(1500, seed=1), loan_csv(1500, seed=2)])
        self.score(version)
        self.house_prices()
        self.bad_drop()
        second = self.second_model()
        self.drift_and_retrain(second)
        self.status()

    def upload(self, folder: str, parts: list[bytes]) -> None:
        from azure.storage.blob import ContentSettings
        for i, body in enumerate(parts):
            self.data.upload_blob(f"{folder}part-{i:04}.csv", body, overwrite=True,
                                  content_settings=ContentSettings(content_type="text/csv"))
        self.data.upload_blob(f"{folder}_SUCCESS", b"", overwrite=True)
        self.ok(f"dropped {len(parts)} part file(s) and a _SUCCESS marker into {self.data.container_name}/{folder}")

    def drop(self, folder: str, parts: list[bytes] | None, p=None) -> str:
        """Upload a drop (unless it is uploaded already) and follow its model to the registry and the endpoint."""
        from lifecycle.core.state_records import Drop, TrainingRun
        p = p or self.p
        if parts is not None:
            self.upload(folder, parts)
        drop = self.wait("the drop to start a training job", lambda: next(
            (d for d in p.state.list(Drop) if d.prefix == folder and d.job), None), self.timeout)
        run = p.state.get(TrainingRun, drop.job)
        files = f" reading {len(run.data_files)} file(s) of {p.policies.model.data_root}" if run else ""
        self.ok(f"BlobCreated → on_data_arrived → {p.policies.model.name}'s training job [bold]{drop.job}[/]{files}")
        decision = self.registered(drop.job, p)
        metrics = "  ".join(f"{k} {v:.3f}" for k, v in decision.metrics.items() if isinstance(v, (int, float)))
        self.ok(f"RunCompleted → gate passed ({metrics}) → registered "
                f"[bold]{p.policies.model.name}:{decision.version}[/] with lineage tags")
        ref = f"{p.policies.model.name}:{decision.version}"
        self.follow_rollout(ref, p)
        return ref

    def house_prices(self) -> None:
        """The second model: a regression trained by the team's own pipeline on daily partitions. The second
        day's job reads both days (window: 30 days), and its canary is judged on prices, not classes."""
        from mlops.demo_data import HOUSE_COLUMNS, house_csv, house_rows
        from mlops.traffic import Traffic
        houses = self.houses
        self.console.rule(f"{HOUSES}: regression, trained by examples/pipeline/pipeline.yml")
        first = self.drop("houses/2026-11-29/", None, houses)
        key = houses.endpoints.scoring_key(houses.policies.model.endpoint)
        uri = self.info.scoring_uri.replace(f"/endpoints/{self.p.policies.model.endpoint}/",
                                            f"/endpoints/{houses.policies.model.endpoint}/")
        rows = [r[:-1] for r in house_rows(500, seed=42)]
        with Traffic(uri, key, HOUSE_COLUMNS[:-1], rows, rate=15) as traffic:
            self.ok(f"{first} serves {uri}; sending 15 requests a second while the next day's model rolls out")
            self.drop("houses/2026-11-30/", [house_csv(1200, seed=2)], houses)
        summary = traffic.summary()
        self.ok(f"{summary['requests']} house-price requests during the rollout: status {summary['status']}, "
                f"by deployment {summary['deployments']}")
        self.console.rule(self.p.policies.model.name)

    def registered(self, job_name: str, p=None):
        """Wait for the training job and the registration gate; the Decision, if the model was registered."""
        from lifecycle.core.state_records import Decision
        p = p or self.p
        job = self.wait(f"training job {job_name} to finish", lambda: (s := p.jobs.get(job_name)) and s.done and s,
                       self.timeout * 3)
        if job.status != "Completed":
            raise StepFailed(f"training job {job.name} {job.status}: {job.error}")
        decision = self.wait("the registration gate", lambda: p.state.get(Decision, job_name), self.timeout)
        if decision.outcome != "registered":
            raise StepFailed(f"the gate rejected job {job_name}: {'; '.join(decision.reasons)}")
        return decision

    def follow_rollout(self, ref: str, p=None) -> None:
        """Print each step of the rollout of `ref` as it happens, until it ends."""
        from lifecycle.core.rollout_machine import Phase, Rollout
        p = p or self.p
        shown = 0
        started = time.monotonic()
        deadline = started + self.timeout * 4
        with self.console.status(f"rollout {ref}: waiting for it to start") as status:
            while time.monotonic() < deadline:
                r = p.state.get(Rollout, p.policies.model.endpoint)
                if r and r.model == ref:
                    for entry in r.history[shown:]:
                        self.ok(f"rollout {ref}: {entry['note']}")
                    shown = len(r.history)
                    if r.phase == Phase.ROLLED_BACK:
                        raise StepFailed(f"the rollout of {ref} was rolled back: {r.reason}")
                    endpoint = p.endpoints.get(r.endpoint)
                    if r.phase == Phase.PROMOTED and endpoint and endpoint.traffic == {r.colour: 100}:
                        return
                    split = ", ".join(f"{d} {w}%" for d, w in (endpoint.traffic if endpoint else {}).items())
                    status.update(f"rollout {ref}: {r.phase}{' (paused)' if r.paused else ''}"
                                  f"{f', traffic {split}' if split else ''} ({time.monotonic() - started:.0f} s)")
                else:
                    status.update(f"rollout {ref}: waiting for it to start ({time.monotonic() - started:.0f} s)")
                time.sleep(0.5)
        raise StepFailed(f"timed out waiting for the rollout of {ref}")

    def score(self, ref: str) -> None:
        import requests

        from mlops.demo_data import COLUMNS, loan_rows
        key = self.p.endpoints.scoring_key(self.p.policies.model.endpoint)
        rows = [r[:-1] for r in loan_rows(5, seed=99)]
        body = {"input_data": {"columns": COLUMNS[:-1], "data": rows}}
        response = requests.post(self.info.scoring_uri, json=body, headers={"Authorization": f"Bearer {key}"},
                                 timeout=30)
        if response.status_code != 200:
            raise StepFailed(f"scoring failed: {response.status_code} {response.text[:300]}")
        answer = response.json()
        deployment = response.headers.get("azureml-model-deployment")
        self.ok(f"scored {len(rows)} rows at {self.info.scoring_uri} ({deployment}, "
                f"{ref}): predictions {answer.get('predictions')}")

    def second_model(self) -> str:
        """More data → a second model → blue/green rollout judged under generated traffic → promotion."""
        from mlops.demo_data import COLUMNS, loan_csv, loan_rows
        from mlops.traffic import Traffic
        key = self.p.endpoints.scoring_key(self.p.policies.model.endpoint)
        rows = [r[:-1] for r in loan_rows(500, seed=42)]
        with Traffic(self.info.scoring_uri, key, COLUMNS[:-1], rows, rate=15) as traffic:
            self.ok("sending 15 requests a second to the endpoint while the next model rolls out")
            ref = self.drop("loans/2026-11-02/", [loan_csv(4000, seed=3), loan_csv(4000, seed=4)])
        summary = traffic.summary()
        self.ok(f"{summary['requests']} requests during the rollout: status {summary['status']}, "
                f"by deployment {summary['deployments']}, dropped {summary['dropped']}")
        if summary["dropped"]:
            raise StepFailed(f"{summary['dropped']} requests were dropped during the rollout")
        return ref

    def drift_and_retrain(self, live: str) -> None:
        """The world changes under the live model: monitoring sees it, the alert retrains on the labelled
        production traffic, and the new model is rolled out under that traffic."""
        from azure.storage.blob import BlobServiceClient

        from lifecycle.core.state_records import AlertRecord, MonitorRun
        from mlops.demo_data import COLUMNS, loan_rows
        from mlops.report_commands import stack_report
        from mlops.status_view import short_urls_in
        from mlops.traffic import FeedbackWriter, Traffic
        key = self.p.endpoints.scoring_key(self.p.policies.model.endpoint)
        world = loan_rows(3000, seed=77, income_shift=-0.3, concept=2)
        feedback = BlobServiceClient.from_connection_string(self.info.storage_connection_string) \
            .get_container_client(self.p.policies.model.feedback_container)
        traffic = Traffic(self.info.scoring_uri, key, COLUMNS[:-1], [r[:-1] for r in world], rate=15,
                          rows_per_request=4, labels=[r[-1] for r in world])
        with traffic, FeedbackWriter(feedback, traffic, self.p.policies.model.target_column):
            self.ok("the world changes: incomes 26% lower, and borrowers in the south now default far more often; "
                    "traffic carries request ids and their true outcomes follow in the feedback container")
            run = self.wait("monitoring to raise an alert", lambda: next(
                (r for r in sorted(self.p.state.list(MonitorRun), key=lambda r: r.window_end)
                 if r.model == live and r.alerts), None), self.timeout * 2)
            self.monitor_findings(run)
            alert = self.wait("an alert to start retraining", lambda: next(
                (a for a in self.p.state.list(AlertRecord) if a.outcome == "retraining"), None), self.timeout * 2)
            self.ok(f"alert {alert.signal} → [bold]retraining[/] with {short_urls_in(alert.detail)}")
            decision = self.registered(alert.job)
            champion = decision.champion_metrics or {}
            self.ok(f"the gate on the new world's holdout: challenger f1 {decision.metrics.get('f1', 0):.3f} against "
                    f"the live model's {champion.get('f1') or 0:.3f} → registered "
                    f"[bold]{self.p.policies.model.name}:{decision.version}[/]")
            self.follow_rollout(f"{self.p.policies.model.name}:{decision.version}")
        path, _ = stack_report(self.home, model=live)
        self.ok(f"monitoring report of {live}: [bold]{path}[/]")

    def monitor_findings(self, run) -> None:
        result = run.result
        drift = result["drift"]
        for name in drift["drifted_features"]:
            m = drift["features"][name]["metrics"]
            self.ok(f"monitor: {name} drifted (normalized Wasserstein {m.get('normalized_wasserstein') or 0:.3f}, "
                    f"PSI {m.get('psi') or 0:.3f}) over {result['window']['rows']} rows")
        perf = result.get("performance")
        if perf:
            self.ok(f"monitor: accuracy on {perf['rows']} labelled rows {perf['metrics']['accuracy']:.3f} against "
                    f"{perf['baseline'].get('accuracy') or 0:.3f} on the training holdout")
        for alert in result["alerts"]:
            self.ok(f"monitor → {alert['type']} ({alert['signal']}): {alert['summary']}")
            reasons = (result.get(alert["signal"]) or {}).get("reasons") or []
            if len(reasons) > 1:          # the alert's summary names the first; each on its own line
                for reason in reasons:
                    self.console.print(f"    [dim]- {escape(str(reason))}[/]", soft_wrap=True)

    def status(self) -> None:
        from mlops.status import collect
        from mlops.status_view import render
        self.console.rule("mlops status")
        render(self.console, collect(self.everything))

    def production(self, info, home: StackHome) -> None:
        """Each model preprod promoted went into the registry; prod rolls them out in turn, each judged under
        prod's own traffic to its model's endpoint, until prod serves what preprod serves."""
        from contextlib import ExitStack

        from lifecycle.core.rollout_machine import RolloutEvent
        from lifecycle.core.state_records import Promotion
        from mlops.demo_data import COLUMNS, HOUSE_COLUMNS, house_rows, loan_rows
        from mlops.local import local_platform
        from mlops.status import collect
        from mlops.status_view import short_url
        from mlops.traffic import Traffic
        self.console.rule("production")
        prod = local_platform(home)
        shared = sorted(r.model for r in self.p.state.list(Promotion) if r.published)
        self.ok(f"preprod shared {', '.join(shared)} into the registry and told prod of each")
        rows = {self.p.policies.model.endpoint: (COLUMNS[:-1], [r[:-1] for r in loan_rows(500, seed=43)]),
                self.houses.policies.model.endpoint: (HOUSE_COLUMNS[:-1], [r[:-1] for r in house_rows(500, seed=43)])}
        shown: set[str] = set()
        with ExitStack() as traffic:
            for endpoint, (columns, data) in rows.items():
                self.wait(f"prod's first rollout on {endpoint}", lambda e=endpoint: prod.endpoints.get(e), self.timeout)
                uri = info.scoring_uri.replace(f"/endpoints/{info.endpoint_name}/", f"/endpoints/{endpoint}/")
                traffic.enter_context(Traffic(uri, prod.endpoints.scoring_key(endpoint), columns, data, rate=10))
            self.ok(f"sending 10 requests a second to each of prod's endpoints ({', '.join(rows)}) while it rolls "
                    "each model out")

            def settled():
                for done in sorted(prod.state.list(RolloutEvent), key=lambda r: r.finished_at):
                    if done.rollout_id not in shown:
                        shown.add(done.rollout_id)
                        self.ok(f"prod: {done.model} from the registry {done.outcome.replace('_', ' ')}: {done.reason}")
                return {r.model for r in prod.state.list(RolloutEvent)} >= set(shared)
            # each is judged by prod's own canary: one trained on a changed world may be rolled back there
            self.wait("prod to roll out each shared model", settled, self.timeout * 6)
        for model in collect(prod)["app_models"]:
            for chain in model["lineage"]:
                self.ok(f"prod lineage: {chain['deployment']} ({chain['traffic']}%) → registry {chain['registry']} "
                        f"{chain['model']} → preprod version {chain['preprod_version']} → job {chain['job']} → data "
                        f"{short_url(chain['data'])} ({len(chain['data_batches'])} batches)")

    def bad_drop(self) -> None:
        from lifecycle.core.state_records import Drop, TrainingRun
        folder = "loans/broken/"
        self.data.upload_blob(f"{folder}part-0000.csv", b"age,income\n30,1000\n31,2000\n", overwrite=True)
        self.data.upload_blob(f"{folder}_SUCCESS", b"", overwrite=True)
        self.ok(f"dropped a file without the target column into {self.data.container_name}/{folder}")
        drop = self.wait("the bad drop's training job", lambda: next(
            (d for d in self.p.state.list(Drop) if d.prefix == folder and d.job), None), self.timeout)
        run = self.wait("the failure to be recorded", lambda: (r := self.p.state.get(TrainingRun, drop.job))
                       and r.status == "Failed" and r, self.timeout * 2)
        self.ok(f"training job {run.job_name} failed and nothing was registered: [yellow]{run.error}[/]")
