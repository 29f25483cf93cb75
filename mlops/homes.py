"""Which stack home a command shows, one rule for every command:

1. `--home PATH` (with `--env preprod|prod` when PATH holds both environments),
2. else MLOPS_HOME,
3. else `.mlops`: the stack running from it (`mlops up`, or `mlops up --environments`), else one the demo runs,
4. else the most recent of the stacks that ran there: `.mlops` itself, `mlops up --environments`' `.mlops/preprod`
   and `.mlops/prod`, or the demo's `.mlops/demo/preprod` and `.mlops/demo/prod`.

A folder given by --home or MLOPS_HOME that is not a stack home itself is searched the same way (the demo
run with MLOPS_HOME=x keeps its stacks in x/demo/); one where no stack ran is taken as it is. Of two
environments, preprod is shown unless --env says prod. When a stack stops (the end of `mlops up`, the end of
the demo), write_snapshot() leaves `<home>/status.json` = {"written_at": ISO UTC, "status":
mlops.status.collect(...)}: `mlops status` and the dashboard show a stopped stack from it."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from emulator.home import StackHome, write_private

ENVIRONMENTS = ("preprod", "prod")
SNAPSHOT = "status.json"
# the files a stack leaves in its home; the newest of them says when it last ran
_TRACES = ("timeline.jsonl", SNAPSHOT, "stack.json", "functions/settings.json")


class HomeError(RuntimeError):
    """No stack home answers the request; the message says what to do."""


@dataclass(frozen=True)
class Resolved:
    home: StackHome
    environment: str | None       # preprod | prod, for one of two environments side by side
    note: str                     # why this home, when it is not the one asked for ("" when it is)

    @property
    def running(self) -> bool:
        from emulator.stack import StackInfo
        return StackInfo.read(self.home) is not None


def is_stack_home(path: Path) -> bool:
    return any((path / trace).is_file() for trace in _TRACES)


def last_active(path: Path) -> float:
    """When the stack at `path` last wrote one of its files (0: never)."""
    times = [(path / trace).stat().st_mtime for trace in _TRACES if (path / trace).is_file()]
    return max(times, default=0.0)


def _running(path: Path) -> bool:
    """A stack runs from `path` (its stack.json names a live process); each environment's stack writes its own."""
    from emulator.stack import StackInfo
    return StackInfo.read(StackHome(path)) is not None


def _groups(base: Path) -> list[tuple[Path, dict[str | None, Path]]]:
    """The stacks that ran under `base`: (their root, environment → home), a single stack's environment None."""
    found = []
    if is_stack_home(base):
        found.append((base, {None: base}))
    for root in (base, base / "demo"):
        envs = {name: root / name for name in ENVIRONMENTS if is_stack_home(root / name)}
        if envs:
            found.append((root, envs))
    return found


def _pick(root: Path, envs: dict[str | None, Path], env: str | None) -> tuple[Path, str | None]:
    if None in envs:
        return envs[None], None
    name = env or ("preprod" if "preprod" in envs else "prod")
    if name not in envs:
        raise HomeError(f"{root} holds no {name} stack (it holds {', '.join(str(e) for e in envs)})")
    return envs[name], name


def resolve(home: Path | None = None, env: str | None = None) -> Resolved:
    """The stack home a command shows, by the rule above; HomeError when nothing ran where it looked."""
    if env is not None and env not in ENVIRONMENTS:
        raise HomeError(f"--env {env!r}: preprod or prod")
    if home is not None:
        base, asked = home.expanduser().resolve(), "--home"
    elif os.environ.get("MLOPS_HOME"):
        base, asked = StackHome.default().root, "MLOPS_HOME"
    else:
        base, asked = StackHome.default().root, ""
    groups = _groups(base)
    if env is not None:
        groups = [g for g in groups if None not in g[1]]
    if not groups and asked and env is None:
        return Resolved(StackHome(base), None, "")       # named: as it is (the command says what it lacks)
    if not groups:
        where = f"{base} ({asked})" if asked else str(base)
        if env is not None:
            raise HomeError(f"no preprod and prod stacks have run from {where}: start them with "
                            "`mlops up --environments preprod,prod`, or run `mlops demo`")
        raise HomeError(f"no local stack has run from {where}: start one with `mlops up`, run `mlops demo`, "
                        "or pass --home")
    running = [g for g in groups if any(_running(p) for p in g[1].values())]
    chosen = running[0] if running else max(groups, key=lambda g: max(last_active(p) for p in g[1].values()))
    path, name = _pick(*chosen, env)
    if path == base:
        note = ""
    else:
        what = "the demo's" if chosen[0].name == "demo" else "the"
        state = "running" if _running(path) else "stopped"
        other = [e for e in chosen[1] if e not in (None, name)]
        switch = f"; --env {other[0]} for {other[0]}" if other else ""
        note = f"showing {what} {name + ' ' if name else ''}stack at {_shown(path)} ({state}{switch})"
    return Resolved(StackHome(path), name, note)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ---- status.json: the status of a stack that stopped ---------------------------------------------------------

def write_snapshot(home: StackHome, platform=None) -> Path:
    """`<home>/status.json`, written atomically (a temporary file, then a rename): what `mlops status` showed
    just before the stack stopped. `platform`: the lifecycle's platform of that stack (default: built from the
    home's app settings, so the stack must still run)."""
    from mlops.local import local_platform
    from mlops.status import collect
    shown = collect(platform if platform is not None else local_platform(home))
    from lifecycle.clock import utcnow
    text = json.dumps({"written_at": utcnow(), "status": shown}, indent=1, default=str)
    path = home.path(SNAPSHOT)
    write_private(path, text)
    return path


def read_snapshot(home: StackHome) -> dict | None:
    """{"written_at", "status"} of a stopped stack, or None when it left none (or an unreadable one)."""
    try:
        data = json.loads(home.path(SNAPSHOT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("status"), dict) else None

