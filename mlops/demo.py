"""`make demo`: the lifecycle end to end on a fresh local stack, each step printed as it happens."""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console

from emulator.home import StackHome
from emulator.stack import StackError, StackOptions

T = TypeVar("T")
MODELS_FILE = "mlops.yaml"
HOUSES = "house-prices"


class StepFailed(Exception):
    pass


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}")


def run_demo(console: Console, timeout: float) -> int:
    """Two models' lifecycles in pre-production (mlops.yaml: a loan classifier trained by our train.py, a
    house-price regression trained by a team's pipeline), and each model preprod promotes reaching production
    through the registry."""
    from emulator.environments import Environments
    home = StackHome(StackHome.default().root / "demo")
    shutil.rmtree(home.root, ignore_errors=True)   # fresh stacks each run, beside any `mlops up`
    environments = Environments(home, StackOptions.from_env(extra_settings={"MLOPS_CONFIG": MODELS_FILE}))
    try:
        with console.status("starting the local stacks: prod, then preprod") as status:
            environments.start(progress=status.update)
        for name, info in environments.infos.items():
            console.print(f"[green]✓[/] {name} up: storage {info.blob_endpoint}, Event Grid {info.eventgrid_endpoint}, "
                          f"Functions {info.functions_url} ({len(info.functions)} functions), Azure ML {info.aml_url}")
        console.print(f"[green]✓[/] registry [bold]{environments.registry_name}[/] between them: preprod shares "
                      "each model that survives its canary, prod rolls it out under its own canary")
        chain = Chain(console, environments.infos["preprod"], environments.homes["preprod"], timeout)
        chain.run()
        chain.production(environments.infos["prod"], environments.homes["prod"])
    except (StepFailed, StackError) as error:
        console.print(f"[red]✗ {error}[/]")
        for name, env_home in environments.homes.items():
            console.print(f"[dim]{name}: logs {env_home.logs}, timeline {env_home.timeline}, "
                          f"jobs {env_home.path('aml', 'jobs')}[/]")
        return 1
    finally:
        with console.status("stopping the local stacks"):
            environments.stop()
    console.print("[green]Demo finished.[/]")
    return 0


class Chain:
    """Drives the demo through the lifecycle's own ports, as `mlops status` reads them."""

    def __init__(self, console: Console, info, home: StackHome, timeout: float) -> None:
        from azure.storage.blob import BlobServiceClient

        from lifecycle.model_scope import for_model
        from mlops.local import local_platform
        self.console, self.info, self.timeout, self.home = console, info, timeout, home
        everything = local_platform(home)
        self.p = for_model(everything, everything.catalog[0].model.name)      # the loan classifier
        self.houses = for_model(everything, HOUSES)
        self.everything = everything
        self.data = BlobServiceClient.from_connection_string(info.storage_connection_string) \
            .get_container_client(self.p.policies.model.data_container)

    def ok(self, message: str) -> None:
        self.console.print(f"[green]✓[/] {message}")

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
        drop = wait_for("the drop to start a training job", lambda: next(
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
        job = wait_for(f"training job {job_name} to finish", lambda: (s := p.jobs.get(job_name)) and s.done and s,
                       self.timeout * 3)
        if job.status != "Completed":
            raise StepFailed(f"training job {job.name} {job.status}: {job.error}")
        decision = wait_for("the registration gate", lambda: p.state.get(Decision, job_name), self.timeout)
        if decision.outcome != "registered":
            raise StepFailed(f"the gate rejected job {job_name}: {'; '.join(decision.reasons)}")
        return decision

    def follow_rollout(self, ref: str, p=None) -> None:
        """Print each step of the rollout of `ref` as it happens, until it ends."""
        from lifecycle.core.rollout_machine import Phase, Rollout
        p = p or self.p
        shown = 0
        deadline = time.monotonic() + self.timeout * 4
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
            run = wait_for("monitoring to raise an alert", lambda: next(
                (r for r in sorted(self.p.state.list(MonitorRun), key=lambda r: r.window_end)
                 if r.model == live and r.alerts), None), self.timeout * 2)
            self.monitor_findings(run)
            alert = wait_for("an alert to start retraining", lambda: next(
                (a for a in self.p.state.list(AlertRecord) if a.outcome == "retraining"), None), self.timeout * 2)
            self.ok(f"alert {alert.signal} → [bold]retraining[/] with {alert.detail}")
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
                wait_for(f"prod's first rollout on {endpoint}", lambda e=endpoint: prod.endpoints.get(e), self.timeout)
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
            wait_for("prod to roll out each shared model", settled, self.timeout * 6)
        for model in collect(prod)["app_models"]:
            for chain in model["lineage"]:
                self.ok(f"prod lineage: {chain['deployment']} ({chain['traffic']}%) → registry {chain['registry']} "
                        f"{chain['model']} → preprod version {chain['preprod_version']} → job {chain['job']} → data "
                        f"{chain['data']} ({len(chain['data_batches'])} batches)")

    def bad_drop(self) -> None:
        from lifecycle.core.state_records import Drop, TrainingRun
        folder = "loans/broken/"
        self.data.upload_blob(f"{folder}part-0000.csv", b"age,income\n30,1000\n31,2000\n", overwrite=True)
        self.data.upload_blob(f"{folder}_SUCCESS", b"", overwrite=True)
        self.ok(f"dropped a file without the target column into {self.data.container_name}/{folder}")
        drop = wait_for("the bad drop's training job", lambda: next(
            (d for d in self.p.state.list(Drop) if d.prefix == folder and d.job), None), self.timeout)
        run = wait_for("the failure to be recorded", lambda: (r := self.p.state.get(TrainingRun, drop.job))
                       and r.status == "Failed" and r, self.timeout * 2)
        self.ok(f"training job {run.job_name} failed and nothing was registered: [yellow]{run.error}[/]")
