"""Models that misbehave in one way, wrapping a good MLflow model, for rollout tests. The class is pickled
by value into the model, so the inference server loads it like any MLflow model."""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import mlflow.pyfunc


class Faulty(mlflow.pyfunc.PythonModel):
    def __init__(self, mode: str) -> None:
        self.mode = mode            # errors | slow | collapse
        self.calls = 0

    def load_context(self, context) -> None:
        self.inner = mlflow.pyfunc.load_model(context.artifacts["inner"])

    def predict(self, context, model_input, params=None):
        self.calls += 1
        if self.mode == "errors" and self.calls > 20 and self.calls % 3 == 0:
            raise RuntimeError("injected failure")               # a third of the requests, after warming up
        started = time.perf_counter()
        predictions = self.inner.predict(model_input)
        if self.mode == "slow":                                   # five times the good model's time, however busy
            time.sleep(max(0.02, 4 * (time.perf_counter() - started)))
        if self.mode == "collapse":
            return [1] * len(predictions)                         # one class for everyone
        return predictions


def save_faulty(inner: Path, target: Path, mode: str) -> Path:
    import cloudpickle
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    good = mlflow.pyfunc.load_model(str(inner))
    mlflow.pyfunc.save_model(str(target), python_model=Faulty(mode), artifacts={"inner": str(inner)},
                             signature=good.metadata.signature,
                             pip_requirements=["mlflow-skinny", "scikit-learn", "pandas"])
    shutil.copytree(inner / "reference", target / "reference")   # the smoke test's rows
    return target
