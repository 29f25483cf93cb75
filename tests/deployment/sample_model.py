"""Small MLflow models shaped like the ones training/train.py writes (a scikit-learn Pipeline with a
ColumnTransformer, signature inferred from the feature DataFrame, reference/sample.csv, metrics.json),
built in a second or two for tests of the scoring script, the inference server and the router."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ["age", "income", "plan", "tenure_months", "has_partner"]


def features(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(18, 80, n),
        "income": rng.normal(50_000, 12_000, n).round(2),
        "plan": rng.choice(["basic", "plus", "premium"], n),
        "tenure_months": rng.integers(0, 72, n),
        "has_partner": rng.choice([True, False], n),
    })


def labels(frame: pd.DataFrame) -> np.ndarray:
    score = (frame["tenure_months"] < 12) * 1.5 + (frame["plan"] == "basic") * 1.0 - frame["income"] / 50_000
    return np.where(score > 0.3, "churn", "stay")


def build_model(folder: Path, *, seed: int = 0, n: int = 400) -> Path:
    """Write an MLflow model to `folder` and return it."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X = features(n, seed)
    y = labels(X)
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                            ("encode", OneHotEncoder(handle_unknown="ignore"))])
    model = Pipeline([
        ("prepare", ColumnTransformer([("numeric", numeric, ["age", "income", "tenure_months"]),
                                       ("categorical", categorical, ["plan", "has_partner"])])),
        ("classify", LogisticRegression(max_iter=500)),
    ]).fit(X, y)
    folder.parent.mkdir(parents=True, exist_ok=True)
    mlflow.sklearn.save_model(
        model, str(folder), signature=infer_signature(X, model.predict(X)),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        pip_requirements=["scikit-learn", "pandas"],  # skips mlflow's slow requirement inference
    )
    reference = folder / "reference"
    reference.mkdir(exist_ok=True)
    X.head(50).to_csv(reference / "sample.csv", index=False)
    (reference / "profile.json").write_text(json.dumps({"features": FEATURES, "rows": n}))
    (folder / "metrics.json").write_text(json.dumps({"accuracy": float((model.predict(X) == y).mean())}))
    return folder
