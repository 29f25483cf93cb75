"""The retraining policies a simulation compares: the built-in ones, and a team's own from a YAML file.

A policy is a set of the app settings the function app reads (RETRAIN_ON, RETRAIN_SCHEDULE, RETRAIN_COOLDOWN_MINUTES,
DRIFT_THRESHOLDS, GATE_MARGIN, ROLLOUT_STEPS, ...), so what wins here is pasted into the app as it is:

    policies:
      drift-sensitive:
        description: retrain on drift, with a lower PSI threshold
        settings:
          RETRAIN_ON: drift
          DRIFT_THRESHOLDS: psi=0.1
      every-3-days:
        settings: {RETRAIN_ON: schedule, RETRAIN_SCHEDULE: "0 0 2 */3 * *"}
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path

import yaml

from lifecycle.settings import Settings
from mlops.simulation.engine import SCHEDULES, Candidate

BUILT_IN = (
    Candidate("never", {"RETRAIN_ON": "never"}, "never retrain: the first model serves throughout"),
    Candidate("weekly", {"RETRAIN_ON": "schedule", "RETRAIN_SCHEDULE": "0 0 2 * * 1", "TRAINING_WINDOW": "14 days"},
              "retrain every Monday at 02:00 on the last 14 days of data"),
    Candidate("daily", {"RETRAIN_ON": "schedule", "RETRAIN_SCHEDULE": "0 0 2 * * *", "TRAINING_WINDOW": "14 days"},
              "retrain every day at 02:00 on the last 14 days of data"),
    Candidate("on-drift", {"RETRAIN_ON": "drift"}, "retrain when the monitor finds data, prediction or label drift"),
    Candidate("on-performance", {"RETRAIN_ON": "performance"},
              "retrain when the monitor finds the labelled (or estimated) performance dropped"),
)


class PolicyFileError(ValueError):
    """A policies file that cannot be used: the message names the file, the policy and the key."""


# Where the app runs, not how it decides: a policy cannot set these (the simulation runs on its own ports).
INFRASTRUCTURE = {"storage_connection", "storage_blob_uri", "storage_account_name", "storage_client_id",
                  "azure_client_id", "platform", "data_container", "state_container", "eventgrid_endpoint",
                  "eventgrid_key", "config_file", "data_collector_container", "feedback_container", "aml_local_url",
                  "aml_local_key", "azure_subscription_id", "azure_resource_group", "azureml_workspace",
                  "data_datastore", "training_environment", "inference_environment", "monitoring_environment",
                  "job_compute", "data_collector_blob_uri", "log_analytics_workspace_id", "azure_location", "stage",
                  "registry_name", "promotion_topic_endpoint", "promotion_topic_key", "promotion_approval",
                  "notify_webhooks", "model_name", "target_column", "endpoint_name"}


def known_settings() -> set[str]:
    """The app settings a policy may set: those the lifecycle decides with, and its timers' schedules."""
    return {Settings.env_name(f.name) for f in fields(Settings) if f.name not in INFRASTRUCTURE} | set(SCHEDULES)


def parse_settings(pairs: list[str], where: str) -> dict[str, str]:
    """NAME=VALUE pairs (`--set`), each an app setting the app reads."""
    settings = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise PolicyFileError(f"{where} {pair!r}: use NAME=VALUE, e.g. RETRAIN_COOLDOWN_MINUTES=60")
        settings[name.strip()] = value.strip()
    _check_names(settings, where)
    return settings


def load_policies(path: Path) -> list[Candidate]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PolicyFileError(f"cannot read the policies file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise PolicyFileError(f"{path} is not UTF-8 text: {error.reason} at byte {error.start}") from None
    except yaml.YAMLError as error:
        raise PolicyFileError(f"{path} is not valid YAML: {error}") from None
    entries = doc.get("policies") if isinstance(doc, dict) else None
    if isinstance(entries, list):
        names = [str(e.get("name")) for e in entries if isinstance(e, dict) and e.get("name")]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise PolicyFileError(f"{path}: policy {', '.join(map(repr, twice))} named more than once")
        entries = {str(e["name"]): e for e in entries} if len(names) == len(entries) else None
    if not isinstance(entries, dict) or not entries:
        raise PolicyFileError(f"{path}: expected `policies:` with one entry per policy, each with its `settings:` "
                              "(app settings such as RETRAIN_ON: drift)")
    found = []
    for name, entry in entries.items():
        where = f"{path}: policy {name!r}"
        if not isinstance(entry, dict) or not isinstance(entry.get("settings"), dict):
            raise PolicyFileError(f"{where}: expected a mapping with `settings:` (app setting: value)")
        unknown = set(entry) - {"name", "description", "settings"}
        if unknown:
            raise PolicyFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; a policy has description "
                                  "and settings")
        given = {str(k): v for k, v in entry["settings"].items()}
        _check_names(given, where)
        settings = {k: _text(v, f"{where}: {k}") for k, v in given.items()}
        found.append(Candidate(str(name), settings, str(entry.get("description") or "")))
    return found


def choose(candidates: list[Candidate], names: list[str]) -> list[Candidate]:
    """The named policies (all, without names); an unknown name is an error listing the known ones."""
    by_name: dict[str, Candidate] = {}
    for c in candidates:
        by_name[c.name] = c              # a file's policy of a built-in's name replaces it
    if not names:
        return list(by_name.values())
    missing = [n for n in names if n not in by_name]
    if missing:
        raise PolicyFileError(f"no policy named {', '.join(missing)}: the policies are {', '.join(by_name)}")
    return [by_name[n] for n in dict.fromkeys(names)]


def _check_names(settings: Mapping[str, object], where: str) -> None:
    import difflib
    known = known_settings()
    for name in settings:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            what = "where the app runs, not a policy" if name in _infrastructure_names() else \
                f"not an app setting the function app reads{hint}"
            raise PolicyFileError(f"{where}: {name} is {what}")


def _infrastructure_names() -> set[str]:
    return {Settings.env_name(name) for name in INFRASTRUCTURE}


def _text(value: object, where: str) -> str:
    if value is None or isinstance(value, dict):
        raise PolicyFileError(f"{where}: {'has no value' if value is None else 'is a mapping'}; an app setting "
                              "is a word, a number or a list (e.g. RETRAIN_ON: drift)")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)
