"""`python -m emulator.functions_host`: run the local Functions host in the foreground.

    python -m emulator.functions_host --app function_app:app --port 0 \
        --settings-file local.settings.json --keys-file KEYS.json --ready-file READY.json --timeline PATH

Settings are put into the environment before the app is imported, as the host does with app settings;
a variable already set in the environment wins over the file, as with Core Tools.
Once listening, READY.json ({"url", "pid", "functions"}) appears atomically; SIGINT/SIGTERM stop the
host cleanly (exit code 0): running invocations get the host's grace period, and one still running after
it does not keep the process alive (as the Functions host stops its worker)."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from emulator.timeline import Timeline

from .keys import HostKeys
from .loader import HostError, apply_settings, load_app, over_environment, read_settings_file
from .server import FunctionsHost

log = logging.getLogger("emulator.functions_host")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        # as Core Tools does: an environment variable wins over the file, with its warning
        settings = over_environment(read_settings_file(args.settings_file)) if args.settings_file else {}
        apply_settings(settings)                    # before the import: module-level code may read them
        app = load_app(args.app)
        if args.keys_file:
            keys = HostKeys.load_or_create(args.keys_file)
        else:
            keys = HostKeys.generate()
            log.warning("no --keys-file: keys are random and not saved, so only anonymous routes are usable")
        host = FunctionsHost(app, keys=keys, settings=settings, host=args.host, port=args.port,
                             timeline=Timeline(args.timeline) if args.timeline else None,
                             max_workers=args.max_workers)
        code = asyncio.run(_serve(host, args.ready_file))
        _exit_if_busy(code)
        return code
    except HostError as exc:
        print(f"functions host: {exc}", file=sys.stderr)
        return 1


async def _serve(host: FunctionsHost, ready_file: str | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await host.start()
    try:
        if ready_file:
            _write_atomically(Path(ready_file), {"url": host.url, "pid": os.getpid(),
                                                 "functions": host.functions()})
        await stop.wait()
        log.info("stopping the Functions host")
    finally:
        await host.stop()
        if ready_file:
            Path(ready_file).unlink(missing_ok=True)   # a stale ready file would point at a dead host
    return 0


def _exit_if_busy(code: int) -> None:
    """Exit now if a function's thread is still running after the grace period: the interpreter would wait
    for it at exit, and it may never end (e.g. retrying calls to an Azurite that has stopped, as when the
    whole stack is killed and every child gets SIGTERM at once)."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    deadline = time.monotonic() + 1.0        # idle pool threads are on their way out: a moment for them
    for thread in others:
        thread.join(max(0.0, deadline - time.monotonic()))
    busy = [t.name for t in others if t.is_alive()]
    if busy:
        log.warning("exiting with %d function thread(s) still running: %s", len(busy), ", ".join(busy))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _write_atomically(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, indent=2), encoding="utf-8")
    os.replace(tmp, path)       # readers see no file or the whole file, never half of it


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emulator.functions_host",
                                     description="Run a Python v2-model Function App locally.")
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=7071, help="port (0 = any free port)")
    parser.add_argument("--settings-file", help="local.settings.json ({'IsEncrypted': false, 'Values': {...}})")
    parser.add_argument("--keys-file", help="JSON with function_key, master_key, eventgrid_extension_key; "
                                            "created if missing")
    parser.add_argument("--ready-file", help="written once listening: {url, pid, functions}")
    parser.add_argument("--timeline", help="delivery timeline file (JSON lines) to append to")
    parser.add_argument("--max-workers", type=int, default=8, help="threads for synchronous functions")
    parser.add_argument("--log-level", default="info")
    return parser


if __name__ == "__main__":
    sys.exit(main())
