"""One local online deployment: azureml-inference-server-http serving a model with deployment/score.py,
the same entry script Azure ML runs.

The server's own launcher (`azmlinfsrv`) always binds 0.0.0.0, so its Flask app
(`azureml_inference_server_http.server.entry:app`) runs under gunicorn instead, on a socket this
process binds to 127.0.0.1 first and hands over (`--bind fd://N`): the port is known before the
server starts and no other process can take it in between.

Each server answers only requests that carry its own secret (emulator/aml/guard.py): a random one per
start, in the server's environment, sent by whoever may talk to it (the router, the readiness probe)
in the header `server.headers` holds. Anything else gets 401.

    server = InferenceServer(log_path=folder / "blue.log")
    url = server.start(model_dir, name="mlops-model", version="3")
    server.wait_ready(60)        # GET / answers "Healthy" once init() has loaded the model
    ... POST f"{url}/score" with server.headers ...
    server.stop()
"""
from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from emulator.aml.guard import DEPLOYMENT_SECRET_ENV, DEPLOYMENT_SECRET_HEADER
from emulator.azurite import PROJECT_ROOT
from emulator.processes import die_with_parent

_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit)\b: .+$", re.MULTILINE)
SCORE_SCRIPT = PROJECT_ROOT / "deployment" / "score.py"
# azureml_inference_server_http.server.entry:app behind the per-server secret check
APP = "emulator.aml.guard:create_app()"

# Worker model. Scoring is CPU-bound Python (pandas and scikit-learn hold the GIL), so throughput
# comes from processes, not threads: on 2 cores, 2 workers served ~1.5x the requests of 1 worker
# (sync or 4 threads), and a second thread per worker added nothing. The gthread worker class
# (with 1 thread) keeps the router's pooled connections alive; the sync worker closes each one.
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 1


class ServingError(RuntimeError):
    pass


@dataclass(frozen=True)
class UsageSample:
    """What one server's processes (gunicorn arbiter and workers) had used at one moment."""
    time: float              # epoch seconds
    server: int              # the arbiter's pid: CPU seconds only compare between samples of one server
    cpu_seconds: float       # cumulative user + system CPU time, workers that exited included
    rss_bytes: int           # resident memory of the processes alive now (shared pages count in each)
    processes: int


class InferenceServer:
    """An azureml-inference-server-http process (gunicorn) on 127.0.0.1."""

    def __init__(self, log_path: str | os.PathLike[str] | None = None, *, workers: int = DEFAULT_WORKERS,
                 threads: int = DEFAULT_THREADS, worker_class: str = "gthread",
                 score_script: str | os.PathLike[str] = SCORE_SCRIPT,
                 mount_parent: str | os.PathLike[str] | None = None) -> None:
        """mount_parent: where the model's mount folder goes (the system's temporary folder by default)."""
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkdtemp(prefix="inference-")) / "server.log"
        self.workers = workers
        self.threads = threads
        self.worker_class = worker_class
        self.score_script = Path(score_script).resolve()
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.model = ""
        self.secret = ""          # this start's secret: requests without it get 401
        self._mount_parent = Path(mount_parent) if mount_parent else None
        self._mount_root: Path | None = None
        self._cpu: dict[tuple[int, float], float] = {}     # (pid, create time) -> last CPU seconds seen

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, model_dir: str | os.PathLike[str], *, name: str, version: str | int, port: int = 0,
              env: dict[str, str] | None = None) -> str:
        """Start serving the model in model_dir (a folder holding an MLflow model, at any depth, as
        Azure ML's AZUREML_MODEL_DIR). Returns the base URL; POST {url}/score. Does not wait for the
        model to load: call wait_ready()."""
        if self.process is not None and self.process.poll() is None:
            raise ServingError(f"the inference server for {self.model} is already running (pid {self.process.pid})")
        model_dir = Path(model_dir).resolve()
        if not model_dir.is_dir():
            raise ServingError(f"model folder {model_dir} does not exist")
        self.model = f"{name}:{version}"
        self.secret = secrets.token_urlsafe(32)
        self._cpu.clear()
        mounted = self._mount(model_dir, name, str(version))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(128)
            sock.set_inheritable(True)
            bound = sock.getsockname()[1]
            command = [
                sys.executable, "-m", "gunicorn",
                "--bind", f"fd://{sock.fileno()}",
                "--workers", str(self.workers),
                "--worker-class", self.worker_class,
                "--threads", str(self.threads),
                "--timeout", "300",             # as azmlinfsrv: model loading can be slow
                "--graceful-timeout", "5",
                "--keep-alive", "75",           # longer than the router's pooled connections live
                "--error-logfile", "-",
            ]
            if _gunicorn_version() >= (27,):
                command.append("--no-control-socket")  # 27+ opens one per server at a shared default path
            command.append(APP)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as log_file:
                self.process = subprocess.Popen(
                    command, cwd=self.score_script.parent, env=self._environment(mounted, name, version, env),
                    stdout=log_file, stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),), start_new_session=True,
                    preexec_fn=die_with_parent,
                )
        finally:
            sock.close()  # the child holds its own copy
        self.url = f"http://127.0.0.1:{bound}"
        return self.url

    def _mount(self, model_dir: Path, name: str, version: str) -> Path:
        """Azure ML mounts a registered model at /var/azureml-app/azureml-models/<name>/<version> and
        points AZUREML_MODEL_DIR there; a symlink gives the local server the same shape."""
        self._unmount()
        if self._mount_parent is not None:
            self._mount_parent.mkdir(parents=True, exist_ok=True)
        self._mount_root = Path(tempfile.mkdtemp(prefix="azureml-app-", dir=self._mount_parent))
        mount = self._mount_root / "azureml-models" / name / version
        mount.parent.mkdir(parents=True)
        mount.symlink_to(model_dir, target_is_directory=True)
        return mount

    def _unmount(self) -> None:
        if self._mount_root is not None:
            shutil.rmtree(self._mount_root, ignore_errors=True)
            self._mount_root = None

    def _environment(self, model_dir: Path, name: str, version: str | int, extra: dict[str, str] | None) -> dict:
        env = dict(os.environ)
        env.update({
            "AZUREML_ENTRY_SCRIPT": str(self.score_script),
            "AML_APP_ROOT": str(self.score_script.parent),  # Azure ML: /var/azureml-app (the code folder)
            "AZUREML_MODEL_DIR": str(model_dir),
            "AZUREML_MODEL_NAME": name,
            "AZUREML_MODEL_VERSION": str(version),
            "SERVICE_NAME": name,
            "PYTHONUNBUFFERED": "1",
        })
        env.update(extra or {})
        env[DEPLOYMENT_SECRET_ENV] = self.secret     # never from `extra`: the secret is this start's own
        return env

    @property
    def headers(self) -> dict[str, str]:
        """The header field every request to this server must carry (the router's, the probes')."""
        return {DEPLOYMENT_SECRET_HEADER: self.secret}

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until GET / answers 200 (the model's init() has run in a worker). Raises ServingError
        with the end of the log if the server exits or does not become ready in time."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise self.not_ready(timeout)
            time.sleep(0.1)

    def ready(self) -> bool:
        """One probe: whether GET / answers 200 now. Raises ServingError (with the end of the log) if the
        server has exited."""
        self._check_running()
        try:
            probe = urllib.request.Request(self.url + "/", headers=self.headers)
            with urllib.request.urlopen(probe, timeout=1) as response:
                return response.status == 200
        except urllib.error.HTTPError as error:
            if error.code == 401:            # waiting would not help
                raise self._refused() from None
            return False
        except (urllib.error.URLError, OSError):
            return False  # still loading: connections wait in the listen backlog until a worker is up

    async def ready_async(self) -> bool:
        """ready() for an asyncio loop: the same probe, without blocking the loop or holding a thread."""
        self._check_running()
        parts = urlsplit(self.url)
        request = (f"GET / HTTP/1.1\r\nHost: {parts.netloc}\r\n{DEPLOYMENT_SECRET_HEADER}: {self.secret}\r\n"
                   "Connection: close\r\n\r\n").encode()
        try:
            async with asyncio.timeout(1):
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                try:
                    writer.write(request)
                    status_line = await reader.readline()
                finally:
                    writer.close()
        except (OSError, TimeoutError):
            return False             # still loading (the connection waits in the listen backlog)
        fields = status_line.split()
        status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        if status == 401:
            raise self._refused()
        return status == 200

    def _check_running(self) -> None:
        if self.process is None:
            raise ServingError("the inference server was not started")
        if self.process.poll() is not None:
            raise ServingError(f"the inference server for {self.model} exited with code "
                               f"{self.process.returncode} during start-up: {self.failure_reason()}\n"
                               f"log {self.log_path}:\n{self.log_tail()}")

    def _refused(self) -> ServingError:
        return ServingError(f"the inference server for {self.model} refused its own secret (401); "
                            f"log {self.log_path}:\n{self.log_tail()}")

    def not_ready(self, timeout: float) -> ServingError:
        """The error for a server that was not ready within `timeout` seconds."""
        return ServingError(f"the inference server for {self.model} was not ready within {timeout:.0f} s; "
                            f"log {self.log_path}:\n{self.log_tail()}")

    def stop(self, timeout: float = 10) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            self._unmount()
            return
        process.send_signal(signal.SIGTERM)  # gunicorn: graceful shutdown of the workers
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in self.worker_pids():
                _kill(pid)
            process.kill()
            process.wait(5)
        self._unmount()

    # -- state -----------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        """The gunicorn arbiter's pid (the workers are its children: worker_pids())."""
        return self.process.pid if self.process else None

    def worker_pids(self) -> list[int]:
        """The worker processes, which do the scoring (for CPU and memory figures)."""
        if not self.alive:
            return []
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            return [int(pid) for pid in children]
        except OSError:
            return []

    def usage(self) -> UsageSample | None:
        """CPU time and memory of the arbiter and its workers now (None once the server has exited).

        CPU seconds are cumulative over every process this server ever ran: a worker that gunicorn
        replaced keeps counting with the CPU time last seen for it, so the figure never goes down."""
        import psutil
        if not self.alive:
            return None
        try:
            # the workers from /proc/<pid>/task/<pid>/children: psutil's children() reads every process's stat
            processes = [psutil.Process(pid) for pid in (self.pid, *self.worker_pids())]
        except psutil.Error:
            return None
        rss = alive = 0
        for process in processes:
            try:
                with process.oneshot():
                    key = (process.pid, process.create_time())     # a reused pid is another process
                    times = process.cpu_times()
                    memory = process.memory_info()
            except psutil.Error:               # exited (or unreadable) between listing and reading: skip it
                continue
            self._cpu[key] = times.user + times.system
            rss += memory.rss
            alive += 1
        return UsageSample(time=time.time(), server=self.pid or 0, cpu_seconds=sum(self._cpu.values()),
                           rss_bytes=rss, processes=alive)

    def failure_reason(self) -> str:
        """The first exception in the log: with chained exceptions, the root cause (e.g. the error
        raised by score.py's init(), not the server's wrapper around it)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        found = _EXCEPTION_LINE.search(text)
        return found.group(0).strip() if found else "see the log"

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("  " + line for line in text[-lines:])

    def __enter__(self) -> InferenceServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _gunicorn_version() -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(part) for part in version("gunicorn").split(".")[:2] if part.isdigit())


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
