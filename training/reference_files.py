"""Reading back what training saved beside a model for monitoring. Plain Python (no numpy or pandas), so the
Function App can read a registered model's reference without shipping the training stack."""
from __future__ import annotations

import json
from pathlib import Path


def read_reference(model_dir) -> tuple[dict, dict] | None:
    """What training saved with a model for monitoring, read back: (reference/profile.json, the metrics.json
    beside reference/; {} without one), found in model_dir or the shallowest folder beneath it (a job's
    output, or Azure ML's download layout). None without a profile; ValueError for unreadable JSON."""
    found = sorted(Path(model_dir).rglob("reference/profile.json"), key=lambda path: len(path.parts))
    if not found:
        return None
    metrics = found[0].parent.parent / "metrics.json"
    return json.loads(found[0].read_text()), json.loads(metrics.read_text()) if metrics.is_file() else {}
