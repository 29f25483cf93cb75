"""Where the local stack keeps its data: `.mlops/` in the project folder, or MLOPS_HOME."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StackHome:
    root: Path

    @classmethod
    def default(cls) -> "StackHome":
        return cls(Path(os.environ.get("MLOPS_HOME", ".mlops")).resolve())

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
    def keys(self) -> Path:
        return self.root / "keys.json"

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)
