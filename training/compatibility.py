"""Whether a challenger can take the champion's place without clients or monitoring changing: the same
inputs with the same types, and no label the champion never had. Read from the champion's MLmodel (its
input signature) and the metrics.json saved beside it; computed even when the champion cannot be scored
on the new data, which is when it matters most.

metrics.json's "compatibility" (None when the job had no champion)::

    {"champion_features": {column: mlflow type, ...} | None,    # {} if the champion has no named inputs,
     "challenger_features": {column: mlflow type, ...},         #    None if its MLmodel cannot be read
     "missing_features": [...] | None,     # inputs of the champion that are not inputs of the challenger
     "new_features": [...] | None,         # inputs of the challenger that the champion does not take
     "changed_types": {column: "long -> string", ...} | None,
     "champion_classes": [...] | None,     # its metrics.json "classes", else the estimator's classes_
     "new_classes": [...] | None,          # labels of this data the champion never had
     "missing_classes": [...] | None,      # the champion's labels this data does not have
     "compatible": bool,
     "reasons": [...]}                     # why not, one sentence each; [] when compatible

A regression model has no labels: the three class fields stay None, and only the inputs are compared,
plus the task itself: a classifier replaced by a regression model (or the other way round) would answer
clients numbers instead of labels, which is incompatible whatever the inputs.

Labels are compared by meaning (labels.class_codes): a label read as "1" is the champion's 1.
compatible means no missing or new feature, no changed type, no new class, and a champion whose inputs
and labels are known. New features alone are incompatible: the challenger's input schema requires
columns clients do not send today. Missing classes alone are compatible: the challenger answers with a
subset of the labels clients already handle. The features of the data that train.py does not use (an
identifier, an empty column) are not inputs of the challenger, so a champion input that became one
counts as missing.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

try:                                        # imported as training.compatibility (tests, the local stack)
    from .evaluation import find_mlflow_model
    from .labels import class_codes, plain
except ImportError:                         # run as a script from the code snapshot (Azure ML)
    # the same modules by their script names: mypy checks the package imports above
    from evaluation import find_mlflow_model  # type: ignore[import-not-found, no-redef]
    from labels import class_codes, plain  # type: ignore[import-not-found, no-redef]

LISTED = 10                                 # names quoted in a reason


def compatibility(champion_path: str | Path, challenger_features: Mapping[str, str], classes: Sequence | None,
                  task: str = "classification") -> dict:
    """Compare the champion MLflow model at champion_path with the challenger's inputs (column -> MLflow
    type name, `input_types` of its signature) and the labels of this data (None for regression). Never
    raises for a champion that cannot be read: that is recorded as a reason."""
    labels = [plain(c) for c in classes] if task == "classification" and classes is not None else None
    challenger_features = dict(challenger_features)
    try:
        folder = find_mlflow_model(champion_path)
        from mlflow.models import Model

        meta = Model.load(str(folder / "MLmodel"))
    except Exception as e:                  # a missing or unreadable champion: nothing to compare with
        return _result(None, challenger_features, None, labels,
                       [f"the champion's MLmodel cannot be read ({type(e).__name__}: {_first_line(e)})"])
    reasons = []
    was = champion_task(folder, meta)
    mismatch = was is not None and was != task
    if was is not None and mismatch:
        reasons.append(f"the champion is a {_task_noun(was)} and the challenger a {_task_noun(task)}: clients "
                       f"would get {'numbers' if task == 'regression' else 'labels'} instead of "
                       f"{'labels' if task == 'regression' else 'numbers'}")
    known = champion_classes(folder, meta) if labels is not None and not mismatch else None
    return _result(input_types(meta.get_input_schema()), challenger_features, known,
                   None if mismatch else labels, reasons)


def champion_task(folder: Path, meta=None) -> str | None:
    """"classification" or "regression": the "task" of the metrics.json beside the champion's MLmodel
    (older ones say "binary" or "multiclass"), else what its scikit-learn estimator is; None if unknown."""
    try:
        saved = json.loads((folder / "metrics.json").read_text())
        task = saved.get("task")
        if task in ("classification", "regression"):
            return task
        if task in ("binary", "multiclass") or isinstance(saved.get("classes"), list):
            return "classification"
    except (OSError, ValueError, AttributeError):
        pass
    if meta is not None and "sklearn" not in meta.flavors:
        return None
    try:
        import mlflow.sklearn
        from sklearn.base import is_classifier, is_regressor

        estimator = mlflow.sklearn.load_model(str(folder))
        return "classification" if is_classifier(estimator) else "regression" if is_regressor(estimator) else None
    except Exception:                       # not loadable here
        return None


def _task_noun(task: str) -> str:
    return "regression model" if task == "regression" else "classifier"


def input_types(schema) -> dict[str, str]:
    """column -> MLflow type name ("long", "double", "string", "boolean", ...) of a model signature's
    inputs; {} for no schema, or inputs without names (a tensor signature)."""
    if schema is None or not schema.has_input_names():
        return {}
    return {str(spec.name): getattr(spec.type, "name", None) or str(spec.type) for spec in schema.inputs}


def champion_classes(folder: Path, meta=None) -> list | None:
    """The champion's labels: "classes" of the metrics.json saved beside its MLmodel (train.py writes
    one), else the classes_ of its scikit-learn estimator; None if neither is at hand."""
    try:
        saved = json.loads((folder / "metrics.json").read_text())
        if isinstance(saved.get("classes"), list):
            return saved["classes"]
    except (OSError, ValueError, AttributeError):
        pass
    if meta is not None and "sklearn" not in meta.flavors:
        return None
    try:
        import mlflow.sklearn

        return [plain(c) for c in mlflow.sklearn.load_model(str(folder)).classes_]
    except Exception:                       # not loadable here, or not a classifier
        return None


def _result(champion: dict | None, challenger: dict, known_classes: list | None, classes: list | None,
            reasons: list[str]) -> dict:
    missing = new = changed = None
    if champion:
        missing = [c for c in champion if c not in challenger]
        new = [c for c in challenger if c not in champion]
        changed = {c: f"{champion[c]} -> {challenger[c]}" for c in champion
                   if c in challenger and champion[c] != challenger[c]}
        if missing:
            reasons.append(f"the challenger lacks {_count(missing, 'input')} of the champion: {_names(missing)}")
        if new:
            reasons.append(f"the challenger takes {_count(new, 'new input')} that clients do not send today: "
                           f"{_names(new)}")
        if changed:
            reasons.append(f"{_count(changed, 'input')} changed type: "
                           + _names(f"{c} {change}" for c, change in changed.items()))
    elif champion == {}:
        reasons.append("the champion's MLmodel has no named inputs, so its inputs cannot be compared")
    new_classes = missing_classes = None
    if classes is None:                     # regression: no labels to compare
        pass
    elif known_classes is not None:
        new_classes = [c for c, code in zip(classes, class_codes(classes, known_classes)) if code < 0]
        missing_classes = [plain(c) for c, code in zip(known_classes, class_codes(known_classes, classes)) if code < 0]
        if new_classes:
            reasons.append(f"the data has {_count(new_classes, 'label')} the champion never had: "
                           f"{_names(new_classes)} (the champion's: {_names(known_classes)})")
    elif champion is not None:
        reasons.append("the champion's labels are unknown (no metrics.json beside its MLmodel, no classes_)")
    return {"champion_features": champion, "challenger_features": challenger,
            "missing_features": missing, "new_features": new, "changed_types": changed,
            "champion_classes": known_classes, "new_classes": new_classes, "missing_classes": missing_classes,
            "compatible": not reasons, "reasons": reasons}


def _count(items, noun: str) -> str:
    return f"{len(items)} {noun}{'s' if len(items) != 1 else ''}"


def _names(items, limit: int = LISTED) -> str:
    items = [str(i) for i in items]
    return ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
