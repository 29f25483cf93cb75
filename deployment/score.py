"""Scoring script for azureml-inference-server-http: the same file runs in an Azure ML managed online
deployment (deployment.yml: code_configuration) and in the local stand-in (emulator/aml/serving.py).

init()  finds the MLflow model under $AZUREML_MODEL_DIR (Azure ML mounts the registered model at
        .../azureml-models/<name>/<version>/ with the model folder inside; the search looks for the
        `MLmodel` file), loads it, and reads the input schema (column names and types) from its signature.
run()   takes the request body as a string and answers one prediction per row:

    {"predictions": [...], "probabilities": [[...], ...], "classes": [...], "model": "name:version",
     "request_ids": [...]}          # probabilities/classes if the model has predict_proba; ids if sent

A regression model has no predict_proba: it answers {"predictions": [numbers], "model": ...} (and ids).

Accepted bodies (Azure ML's usual ones, plus MLflow serving's):
    {"input_data": {"columns": [...], "index": [...], "data": [[...], ...]}}   split (index ignored)
    {"input_data": [{col: value, ...}, ...]}  /  {"data": [{col: value, ...}, ...]}   records
    {"data": {"columns": [...], "data": [[...]]}}, {"data": [[...]]} (schema column order),
    {"data": {col: [values...], ...}} (columnar), {"dataframe_split": ...}, {"dataframe_records": ...}

A `request_id` column is not a feature: it is taken out before scoring and echoed back as
`request_ids`, so ground truth can be joined to predictions later. In records, a key left out of one
row is a missing value (null); a model column absent from every row is an error.

Bad input (not JSON, unknown shape, no rows, more than MAX_ROWS rows, missing or unexpected columns,
a value that does not convert to its column's type) is answered 400 with {"error": reason}, naming the
row and column where there is one (score_input.py, beside this file, reads and checks the input).
A failure inside the model is answered 500 with a one-line reason; the traceback goes to the log only.

Data collection. In Azure the deployment's `data_collector` (model_inputs, model_outputs) is fed by
azureml-ai-monitoring's `Collector`, which this script uses when the package is importable (it is in
deployment/environment/conda.yml): inputs (features plus request_id) and outputs (predictions,
probabilities, request_id) are collected as DataFrames with a shared correlation context. Locally the
package is not installed and the local endpoint router collects the same data itself.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# score_input.py sits beside this file; the server loads this file by path, not as a package
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from score_input import REQUEST_ID, BadRequest, Column, parse_rows, to_frame  # noqa: E402

try:  # the inference server's own response class (azureml-inference-server-http >= 0.8)
    from azureml_inference_server_http.api.aml_response import AMLResponse
except ImportError:  # older images that ship the azureml-defaults shim
    from azureml.contrib.services.aml_response import AMLResponse  # type: ignore[no-redef]

log = logging.getLogger("score")

_scorer: Scorer | None = None
_collectors: tuple[Any, Any] | None = None


# --------------------------------------------------------------------------------------------------
# the server's entry points


def init() -> None:
    global _scorer, _collectors
    model_root = os.environ.get("AZUREML_MODEL_DIR")
    if not model_root:
        raise RuntimeError("AZUREML_MODEL_DIR is not set: it must point at the folder holding the model")
    _scorer = Scorer.load(Path(model_root))
    _collectors = _data_collectors()
    log.info("model %s loaded from %s; input columns: %s", _scorer.model, _scorer.path,
             ", ".join(f"{c.name}:{c.type}" for c in _scorer.columns) or "(no schema)")


def run(raw_data: str) -> Any:
    if _scorer is None:
        return AMLResponse({"error": "the model is not loaded: init() has not run or failed"}, 503, json_str=True)
    try:
        return _scorer.score(raw_data, _collectors)
    except BadRequest as bad:
        return AMLResponse({"error": str(bad)}, 400, json_str=True)
    except Exception as failure:  # the model itself failed: log the traceback, answer one line
        log.exception("scoring failed")
        return AMLResponse({"error": f"the model failed to score the request: {type(failure).__name__}: "
                                     f"{_one_line(failure)}"}, 500, json_str=True)


def _data_collectors() -> tuple[Any, Any] | None:
    """Azure ML model data collection (deployment.yml data_collector), when azureml-ai-monitoring is
    installed. on_error keeps a collection failure from ever failing a request."""
    try:
        from azureml.ai.monitoring import Collector  # type: ignore[import-not-found]
    except ImportError:
        return None

    def on_error(error: Exception) -> None:
        log.warning("data collection failed: %s", error)

    return (Collector(name="model_inputs", on_error=on_error),
            Collector(name="model_outputs", on_error=on_error))


# --------------------------------------------------------------------------------------------------
# the model


def find_mlmodel(root: Path) -> Path:
    """The folder holding the MLflow model: root itself, or the shallowest folder below it with an
    MLmodel file (Azure ML: $AZUREML_MODEL_DIR/<model folder>/MLmodel)."""
    if (root / "MLmodel").is_file():
        return root
    if not root.is_dir():
        raise RuntimeError(f"model folder {root} does not exist")
    found = sorted((p.parent for p in root.rglob("MLmodel") if p.is_file()),
                   key=lambda p: (len(p.relative_to(root).parts), str(p)))
    if not found:
        raise RuntimeError(f"no MLflow model under {root}: no MLmodel file found. "
                           "Register the model folder written by mlflow save_model.")
    if len(found) > 1 and len(found[0].parts) == len(found[1].parts):
        raise RuntimeError(f"more than one MLflow model under {root}: "
                           f"{', '.join(str(p.relative_to(root)) for p in found[:5])}")
    return found[0]


def model_identity(root: Path, model_path: Path) -> str:
    """name:version. Env AZUREML_MODEL_NAME/AZUREML_MODEL_VERSION when set (the local stand-in sets
    them); else Azure ML's mount layout .../azureml-models/<name>/<version>/...; else the folder name."""
    name, version = os.environ.get("AZUREML_MODEL_NAME"), os.environ.get("AZUREML_MODEL_VERSION")
    if name and version:
        return f"{name}:{version}"
    parts = model_path.absolute().parts  # not resolve(): the mount may be a symlink
    if "azureml-models" in parts:
        i = len(parts) - 1 - parts[::-1].index("azureml-models")
        if i + 2 < len(parts):
            return f"{name or parts[i + 1]}:{version or parts[i + 2]}"
    for child, parent in zip(parts[::-1], parts[-2::-1]):  # .../<name>/<version>/... with a numeric version
        if child.isdigit():
            return f"{name or parent}:{version or child}"
    return f"{name or model_path.name}:{version or 'unknown'}"


class Scorer:
    """A loaded model with its input schema. score() is the whole request path."""

    def __init__(self, path: Path, model: str, pyfunc: Any, columns: list[Column]) -> None:
        self.path, self.model, self.pyfunc, self.columns = path, model, pyfunc, columns
        self.names = [c.name for c in columns]
        raw = _raw_sklearn(pyfunc)
        # A Pipeline is split so that predict and predict_proba share one pass through preprocessing
        self.transform, self.estimator = _split_pipeline(raw) if raw is not None else (None, None)
        self.model_impl = raw if raw is not None else pyfunc
        proba_owner = self.estimator if self.estimator is not None else raw
        self.has_proba = proba_owner is not None and hasattr(proba_owner, "predict_proba")
        classes = getattr(proba_owner, "classes_", None) if self.has_proba else None
        self.classes = np.asarray(classes).tolist() if classes is not None else None
        if raw is not None:
            import sklearn

            # parameters are fixed after fit: validating them on every call is pure overhead
            self._context = lambda: sklearn.config_context(skip_parameter_validation=True)
        else:
            self._context = contextlib.nullcontext

    @classmethod
    def load(cls, root: Path) -> Scorer:
        import mlflow.pyfunc

        path = find_mlmodel(root)
        pyfunc = mlflow.pyfunc.load_model(str(path.resolve()))  # mlflow refuses paths through symlinks
        schema = pyfunc.metadata.get_input_schema()
        columns: list[Column] = []
        if schema is not None and not schema.is_tensor_spec() and schema.has_input_names():
            for spec in schema.inputs:
                type_ = getattr(spec.type, "name", None) or str(spec.type)
                columns.append(Column(spec.name, type_, getattr(spec, "required", True)))
        return cls(path, model_identity(root, path), pyfunc, columns)

    # ---------------------------------------------------------------------------------------------

    def score(self, raw_data: str | bytes, collectors: tuple[Any, Any] | None = None) -> dict[str, Any]:
        frame, request_ids = to_frame(parse_rows(raw_data, self.names), self.columns)
        if collectors is not None:
            context = _collect(collectors[0], frame, request_ids)
        predictions, probabilities = self._predict(frame)
        answer: dict[str, Any] = {"predictions": predictions.tolist()}
        if probabilities is not None:
            answer["probabilities"] = probabilities.tolist()
            answer["classes"] = self.classes
        answer["model"] = self.model
        if request_ids is not None:
            answer["request_ids"] = request_ids
        if collectors is not None:
            _collect_outputs(collectors[1], answer, context)
        return answer

    def _predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        with self._context():
            if self.transform is not None:
                features = self.transform(frame)
                predictions = np.asarray(self.estimator.predict(features))
                probabilities = self.estimator.predict_proba(features) if self.has_proba else None
            else:
                predictions = np.asarray(self.model_impl.predict(frame))
                probabilities = self.model_impl.predict_proba(frame) if self.has_proba else None
        if predictions.ndim > 1 and predictions.shape[1] == 1:
            predictions = predictions[:, 0]
        return predictions, probabilities

# --------------------------------------------------------------------------------------------------
# request parsing


# --------------------------------------------------------------------------------------------------
# odds and ends


def _raw_sklearn(pyfunc: Any) -> Any:
    """The underlying scikit-learn model of an mlflow.sklearn model, else None (score through pyfunc)."""
    if "sklearn" not in getattr(pyfunc.metadata, "flavors", {}):
        return None
    try:
        raw = pyfunc.get_raw_model()
    except Exception:
        raw = getattr(getattr(pyfunc, "_model_impl", None), "sklearn_model", None)
    return raw if hasattr(raw, "predict") else None


def _split_pipeline(model: Any) -> tuple[Any, Any]:
    """For a Pipeline: (transform of all steps but the last, last step), so predict and predict_proba
    share one pass through the preprocessing. Otherwise (None, None)."""
    steps = getattr(model, "steps", None)
    if not steps or len(steps) < 2 or not hasattr(model, "__getitem__"):
        return None, None
    try:
        head, last = model[:-1], model[-1]
    except Exception:
        return None, None
    if not hasattr(head, "transform") or not hasattr(last, "predict"):
        return None, None
    return head.transform, last


def _collect(collector: Any, frame: pd.DataFrame, request_ids: list[Any] | None) -> Any:
    try:
        data = frame if request_ids is None else frame.assign(**{REQUEST_ID: request_ids})
        return collector.collect(data)
    except Exception as err:
        log.warning("model_inputs collection failed: %s", err)
        return None


def _collect_outputs(collector: Any, answer: dict[str, Any], context: Any) -> None:
    try:
        data = {"prediction": answer["predictions"]}
        if "probabilities" in answer:
            for j, cls in enumerate(answer["classes"]):
                data[f"probability_{cls}"] = [p[j] for p in answer["probabilities"]]
        if "request_ids" in answer:
            data[REQUEST_ID] = answer["request_ids"]
        collector.collect(pd.DataFrame(data), context)
    except Exception as err:
        log.warning("model_outputs collection failed: %s", err)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else "")[:300]
