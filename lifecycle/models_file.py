"""The models file (MLOPS_CONFIG, e.g. mlops.yaml, shipped with the app): every model this app keeps
alive, each with its task, data, training and policies. What a model does not set comes from the file's
`defaults`, then from the app settings, so an app without the file keeps working from app settings alone.

    defaults:                    # optional: any policy section below, for every model
      retrain: {cooldown_minutes: 10}
    models:
      loan-approval:             # the model's name in the registry
        task: classification     # classification (binary or multiclass) | regression
        target: approved         # the label column
        endpoint: loans          # its online endpoint (one per model)
        data: {root: loans/, window: all}          # window: all | <N> days | <N> drops | {column: C, days: N}
        training: {spec: examples/pipeline/pipeline.yml, inputs: {n_estimators: 200}}   # spec: optional
        gate: {metric: f1, floor: 0.6, margin: 0.02}    # regression: r2 (floor 0.5) unless set; mae/rmse: a ceiling
        rollout: {steps: [10, 50, 100], bake_seconds: 300}
        monitor: {window_minutes: 60, sensitive_column: gender, drift_thresholds: {psi: 0.25}}
        retrain: {drop_quiet_seconds: 60, cooldown_minutes: 10, max_drop_attempts: 3, schedule: "0 0 3 * * *",
                  on: [schedule, drift]}
        # schedule (retrain, monitor): the model's own turns of the app's timer (RETRAIN_SCHEDULE /
        # MONITOR_SCHEDULE, which must tick at least as often); none = every tick
        # on: what starts training on its own (RETRAIN_ON): a list or "drift,performance" of data, schedule,
        # drift, performance; or never (a forced retrain still trains)

A wrong file stops the app at start with the file, the key and what to do (ModelsFileError)."""
from __future__ import annotations

import difflib
import os
import typing
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from lifecycle.core.model_catalog import check_catalog
from lifecycle.core.policies import (
    GatePolicy,
    ManagedModel,
    MonitorPolicy,
    Policies,
    PolicyError,
    RetrainPolicy,
    RolloutPolicy,
    TrainingWindow,
    retrain_triggers,
)

SECTIONS: dict[str, type] = {"retrain": RetrainPolicy, "gate": GatePolicy, "rollout": RolloutPolicy,
                             "monitor": MonitorPolicy}
APP_ROOT = Path(__file__).resolve().parent.parent
MODEL_KEYS = ("task", "target", "endpoint", "data", "training", *SECTIONS)
DATA_KEYS, TRAINING_KEYS = ("root", "window"), ("spec", "inputs")
# what the evaluation step reports for each task (training/evaluation.py), so a gate on another fails at start
TASK_METRICS = {"classification": ("accuracy", "f1", "precision", "recall", "roc_auc"),
                "regression": ("r2", "mae", "rmse", "mape")}
REGRESSION_GATE = {"metric": "r2", "floor": 0.5}       # a regression model's gate unless the file sets one
FILE_KEYS = {"triggers": "on"}     # policy fields the file names otherwise: retrain.on is RETRAIN_ON


class ModelsFileError(ValueError):
    pass


def check_at_start(env: Mapping[str, str] = os.environ) -> None:
    """Read the models file MLOPS_CONFIG names, if any, when the function app loads: a wrong one stops the app
    there (the Functions host shows the error for every function) instead of at its first event."""
    if not env.get("MLOPS_CONFIG"):
        return
    from lifecycle.bootstrap import build_policies
    from lifecycle.settings import Settings, SettingsError
    try:
        base = build_policies(Settings.from_env(env))    # what a model leaves out comes from the app settings
    except SettingsError:
        base = Policies()                                # reported where the platform is built, not here
    load_models_file(env["MLOPS_CONFIG"], base, APP_ROOT)


def load_models_file(path: str | Path, base: Policies, app_root: Path) -> tuple[Policies, ...]:
    """The models of the file at `path` (relative to `app_root`); `base` holds the app settings' values."""
    import yaml  # comes with azure-ai-ml; read once, at start
    file = (app_root / path) if not Path(path).is_absolute() else Path(path)
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelsFileError(f"MLOPS_CONFIG names {path}, which does not exist (looked at {file}): ship the "
                              "models file with the app, or leave MLOPS_CONFIG empty to use app settings") from None
    except yaml.YAMLError as error:
        raise ModelsFileError(f"{path}: not valid YAML: {error}") from None
    reader = _Reader(str(path), app_root)
    doc = reader.mapping(doc, "", ("defaults", "models"))
    defaults = reader.mapping(doc.get("defaults") or {}, "defaults", tuple(SECTIONS))
    models = reader.mapping(doc.get("models"), "models", None)
    if not models:
        raise ModelsFileError(f"{path}: models: name at least one model, e.g. 'models: {{my-model: {{target: "
                              "label}}'")
    built = tuple(reader.model(str(name), spec, defaults, base) for name, spec in models.items())
    try:
        check_catalog(built)
    except PolicyError as error:
        raise ModelsFileError(f"{path}: models: {error.field} {error}") from None
    return built


class _Reader:
    def __init__(self, file: str, app_root: Path) -> None:
        self.file, self.app_root = file, app_root

    def fail(self, key: str, message: str) -> ModelsFileError:
        return ModelsFileError(f"{self.file}: {key}: {message}")

    def mapping(self, value: Any, key: str, allowed: tuple[str, ...] | None) -> dict:
        if not isinstance(value, Mapping):
            raise self.fail(key or "(top level)", f"must be a mapping of name: value, not {type(value).__name__}")
        for name in value:
            if allowed is not None and name not in allowed:
                close = difflib.get_close_matches(str(name), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(allowed)}"
                raise self.fail(f"{key}.{name}" if key else str(name), f"is not a known key{hint}")
        return dict(value)

    def model(self, name: str, spec: Any, defaults: dict, base: Policies) -> Policies:
        key = f"models.{name}"
        spec = self.mapping(spec or {}, key, MODEL_KEYS)
        data = self.mapping(spec.get("data") or {}, f"{key}.data", DATA_KEYS)
        training = self.mapping(spec.get("training") or {}, f"{key}.training", TRAINING_KEYS)
        inputs = self.mapping(training.get("inputs") or {}, f"{key}.training.inputs", None)
        values: dict[str, Any] = {
            "name": name, "target_column": self.text(spec.get("target", base.model.target_column), f"{key}.target"),
            "endpoint": self.text(spec.get("endpoint", name), f"{key}.endpoint"),
            "task": self.text(spec.get("task", "classification"), f"{key}.task"),
            "data_root": self.text(data.get("root", ""), f"{key}.data.root"),
            "training_spec": self.spec_path(training.get("spec", ""), f"{key}.training.spec"),
            "training_inputs": {str(k): str(v) for k, v in inputs.items()}}
        if not values["target_column"]:
            raise self.fail(f"{key}.target", "is missing: name the label column of the model's data")
        try:
            window = data.get("window")
            if window is None:
                values["training_window"] = base.model.training_window      # TRAINING_WINDOW
            elif isinstance(window, Mapping):
                window = self.mapping(window, f"{key}.data.window", ("column", "days"))
                days = window.get("days")
                values["training_window"] = TrainingWindow.of_column(
                    self.text(window.get("column", ""), f"{key}.data.window.column"),
                    days if isinstance(days, int) and not isinstance(days, bool) else 0)
            else:
                values["training_window"] = TrainingWindow.parse(str(window))
            model = ManagedModel(**{**_plain(base.model), **values})
        except PolicyError as error:
            where = {"training_window": "data.window", "data_root": "data.root", "target_column": "target"}
            raise self.fail(f"{key}.{where.get(error.field, error.field)}", str(error)) from None
        built: dict[str, Any] = {"model": model}
        for section, kind in SECTIONS.items():
            merged = {**self.mapping(_bare_on(defaults.get(section) or {}), f"defaults.{section}", _names(kind)),
                      **self.mapping(_bare_on(spec.get(section) or {}), f"{key}.{section}", _names(kind))}
            if section == "gate" and model.task == "regression" and "metric" not in merged:
                merged = {**REGRESSION_GATE, **merged}     # the app settings' gate (f1) is a classifier's
            built[section] = self.policy(kind, getattr(base, section), merged, f"{key}.{section}")
        metric = built["gate"].metric
        if metric not in TASK_METRICS[model.task]:
            raise self.fail(f"{key}.gate.metric", f"is {metric!r}, which a {model.task} job does not report: use "
                            f"one of {', '.join(TASK_METRICS[model.task])}")
        return replace(base, **built)

    def policy(self, kind: type, base: Any, given: dict, key: str) -> Any:
        hints = typing.get_type_hints(kind)
        fields_of = {FILE_KEYS.get(f, f): f for f in hints}
        values = {}
        for name, value in given.items():
            values[fields_of[name]] = self.typed(value, hints[fields_of[name]], f"{key}.{name}")
        try:
            return replace(base, **values)
        except PolicyError as error:
            name = FILE_KEYS.get(error.field, error.field)
            raise self.fail(f"{key}.{name}", f"is {given.get(name)!r}: it {error}") from None

    def typed(self, value: Any, hint: Any, key: str) -> Any:
        origin = typing.get_origin(hint)
        if origin is frozenset:         # retrain.on: a list, or words separated by commas
            try:
                return retrain_triggers(value)
            except PolicyError as error:
                raise self.fail(key, f"is {value!r}: it {error}") from None
        if hint is bool or isinstance(value, bool) and hint in (int, float):
            raise self.fail(key, f"is {value!r}: expected a number")
        if hint is int:
            if not isinstance(value, int):
                raise self.fail(key, f"is {value!r}: expected a whole number")
            return value
        if hint is float:
            if not isinstance(value, int | float):
                raise self.fail(key, f"is {value!r}: expected a number")
            return float(value)
        if origin is tuple:
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list | tuple) or not all(str(i).strip().isdigit() for i in items):
                raise self.fail(key, f"is {value!r}: expected a list of whole numbers, e.g. [10, 50, 100]")
            return tuple(int(str(i).strip()) for i in items)
        if origin in (Mapping, dict) or hint is Mapping:
            table = self.mapping(value, key, None)
            for name, number in table.items():
                if isinstance(number, bool) or not isinstance(number, int | float):
                    raise self.fail(f"{key}.{name}", f"is {number!r}: expected a number")
            return {str(k): float(v) for k, v in table.items()}
        return self.text(value, key)

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.fail(key, f"is {value!r}: expected text")
        return str(value)

    def spec_path(self, value: Any, key: str) -> str:
        path = self.text(value, key)
        if path and not (self.app_root / path).is_file():
            raise self.fail(key, f"{path} is not a file in the app (paths are relative to {self.app_root}): name "
                            "the team's command or pipeline job YAML")
        return path


def _names(kind: type) -> tuple[str, ...]:
    """The keys of a policy section: its fields, as the file names them."""
    return tuple(FILE_KEYS.get(f.name, f.name) for f in fields(kind))


def _bare_on(section: Any) -> Any:
    """YAML 1.1 (PyYAML) reads a bare `on` key as true: in a policy section it is `on`, the retrain triggers."""
    if isinstance(section, Mapping) and any(k is True for k in section):
        return {("on" if k is True else k): v for k, v in section.items()}
    return section


def _plain(model: ManagedModel) -> dict[str, Any]:
    return {f.name: getattr(model, f.name) for f in fields(model)}
