"""Where the local stack keeps its data: `.mlops/` in the project folder, or MLOPS_HOME.

Several files in it hold secrets (keys, connection strings): write_private() writes those readable by
their owner only, from the first byte."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StackHome:
    root: Path

    @classmethod
    def default(cls) -> StackHome:
        return cls(Path(os.environ.get("MLOPS_HOME", ".mlops")).resolve())

    def create(self) -> None:
        """Make the home folder, owner only (0700) when this creates it; an existing one is left as it is."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.root.mkdir(mode=0o700)
        except FileExistsError:
            pass
        else:
            os.chmod(self.root, 0o700)      # mkdir's mode passes through the umask; this one must not

    @property
    def info(self) -> Path:
        return self.root / "stack.json"

    @property
    def lock(self) -> Path:
        return self.root / "stack.lock"

    @property
    def timeline(self) -> Path:
        return self.root / "timeline.jsonl"

    @property
    def azurite(self) -> Path:
        return self.root / "azurite"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def mlruns(self) -> Path:
        """The local Azure ML stand-in's MLflow tracking store (`mlflow ui --backend-store-uri file:<this>`)."""
        return self.root / "aml" / "mlruns"

    @property
    def keys(self) -> Path:
        return self.root / "keys.json"

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, mode 0600 from the first byte: the text goes to a new temporary file
    created 0600 beside it, which then takes the file's place in one step (readers see the old file or
    the new one, never a half-written one, and a crash leaves the old file whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    # O_EXCL: a file left at this name (with any mode) is never reused
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)     # no fsync: a killed process loses nothing the kernel has; power loss is out of scope
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def make_private(path: Path) -> None:
    """Owner only (0600) for a secrets file that an older version wrote with the default mode."""
    try:
        if Path(path).stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    except FileNotFoundError:
        pass
