"""The training job train.yml submits: training/job.yml as the function app's Azure adapter builds it
(lifecycle/adapters/azure_jobs.py), written next to it so that `code: .` and the conda file still resolve.

    python .github/scripts/training_job.py --model-name NAME --target COLUMN [--champion NAME:VERSION]
        [--data URI] [--commit SHA] [--out training/job.ci.yml]

- tags: `mlops.model_name` makes the run the app's own, so that its completion event is gated and the model
  registered (an untagged run of the same experiment is ignored); `mlops.trigger` says a person's push
  started it;
- with a champion, the `champion_model` input (the live model, scored on the same holdout); without one, the
  optional `$[[...]]` group leaves the command, as a command job cannot declare an optional input.

Needs PyYAML only (the runner's Python)."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL_GROUP = re.compile(r"\$\[\[([^\]]*)\]\]")
INPUT = re.compile(r"\$\{\{inputs\.(\w+)\}\}")


def job_spec(spec: dict[str, Any], model_name: str, target: str, champion: str = "", data: str = "",
             commit: str = "") -> dict[str, Any]:
    job = dict(spec)
    inputs = dict(job.get("inputs") or {})
    inputs["target"] = target
    inputs["model_name"] = model_name
    if data:
        inputs["data"] = {**(inputs.get("data") or {}), "path": data}
    command = str(job.get("command", "")).strip()
    if champion:
        name, _, version = champion.partition(":")
        if not (name and version):
            raise ValueError(f"champion {champion!r} is not NAME:VERSION")
        inputs["champion_model"] = {"type": "mlflow_model", "path": f"azureml:{name}:{version}"}
    # A command job cannot declare an optional input: a $[[...]] group naming one it lacks (the champion, the
    # training window's manifests) goes, as the app's adapter does.
    command = " ".join(OPTIONAL_GROUP.sub(
        lambda group: group[0] if all(n in inputs for n in INPUT.findall(group[1])) else "", command).split())
    job["inputs"], job["command"] = inputs, command
    job["tags"] = {**(job.get("tags") or {}), "mlops.model_name": model_name, "mlops.trigger": "forced",
                   "mlops.data_batches": "", "mlops.champion": champion, "mlops.commit": commit}
    if commit:
        job["display_name"] = f"train-{commit[:12]}"
    return job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--champion", default="", help="NAME:VERSION of the live model; empty for none")
    parser.add_argument("--data", default="", help="the training data's URI; empty for job.yml's")
    parser.add_argument("--commit", default="")
    parser.add_argument("--spec", type=Path, default=ROOT / "training" / "job.yml")
    parser.add_argument("--out", type=Path, default=ROOT / "training" / "job.ci.yml")
    args = parser.parse_args(argv)
    spec = yaml.safe_load(args.spec.read_text())
    job = job_spec(spec, args.model_name, args.target, args.champion, args.data, args.commit)
    args.out.write_text(yaml.safe_dump(job, sort_keys=False, width=1000))
    print(args.out, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
