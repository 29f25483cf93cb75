"""Policies built from app settings by the composition root: typed, checked, and a refused value named by
its app setting."""
from __future__ import annotations

import pytest

from lifecycle.bootstrap import build_policies
from lifecycle.core.policies import MonitorPolicy, Policies, PolicyError, RolloutPolicy
from lifecycle.settings import Settings, SettingsError

BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def policies(**env: str) -> Policies:
    return build_policies(Settings.from_env({**BASE, **env}))


def test_the_settings_defaults_are_the_policies_defaults():
    assert policies() == Policies()


def test_numbers_come_typed():
    built = policies(ROLLOUT_STEPS="5,25,100", SMOKE_ROWS="7", ROLLOUT_MIN_REQUESTS="40", MONITOR_MIN_LABELS="12",
                     DRIFT_THRESHOLDS="psi=0.3,normalized_wasserstein=0.2", TARGET_COLUMN="label")
    assert built.rollout.steps == (5, 25, 100)
    assert built.rollout.smoke_rows == 7 and isinstance(built.rollout.smoke_rows, int)
    assert built.rollout.min_requests == 40 and built.monitor.min_labels == 12
    assert built.monitor.drift_thresholds == {"psi": 0.3, "normalized_wasserstein": 0.2}
    assert built.model.target_column == "label"


@pytest.mark.parametrize(("env", "message"), [
    ({"ROLLOUT_STEPS": "50,10,100"}, "app setting ROLLOUT_STEPS is '50,10,100': it must be increasing percentages"),
    ({"ROLLOUT_STEPS": "10,50"}, "ROLLOUT_STEPS is '10,50': it must be increasing percentages ending at 100"),
    ({"ROLLOUT_STEPS": "ten,100"}, "ROLLOUT_STEPS is 'ten,100': whole percentages"),
    ({"ROLLOUT_MIRROR_PERCENT": "60"}, "ROLLOUT_MIRROR_PERCENT is 60: it must be between 0 and 50"),
    ({"ROLLOUT_ON_NEW_MODEL": "later"}, "ROLLOUT_ON_NEW_MODEL is 'later': it must be 'wait' or 'supersede'"),
    ({"SMOKE_ROWS": "0"}, "SMOKE_ROWS is 0: it must be at least 1"),
    ({"SMOKE_ROWS": "2.5"}, "SMOKE_ROWS is '2.5': it must be a whole number"),
    ({"GATE_FLOOR": "high"}, "GATE_FLOOR is 'high': it must be a number"),
    ({"MONITOR_WINDOW_MINUTES": "0"}, "MONITOR_WINDOW_MINUTES is 0.0: it must be more than 0"),
    ({"RETRAIN_COOLDOWN_MINUTES": "-1"}, "RETRAIN_COOLDOWN_MINUTES is -1.0: it must not be negative"),
    ({"DRIFT_THRESHOLDS": "psi"}, "DRIFT_THRESHOLDS has 'psi': use metric=number pairs"),
    ({"MLOPS_STAGE": "qa"}, "MLOPS_STAGE is 'qa': it must be dev, preprod or prod"),
    ({"MLOPS_STAGE": "prod"}, "AZUREML_REGISTRY is '': it must name the Azure ML registry"),
    ({"MLOPS_STAGE": "prod", "AZUREML_REGISTRY": "r", "PROMOTION_APPROVAL": "maybe"},
     "PROMOTION_APPROVAL is 'maybe': use 'none' or 'required'"),
    ({"COMPUTE_MAX_NODES": "0"}, "COMPUTE_MAX_NODES is 0: it must be at least 1 and at least min_nodes"),
    ({"COMPUTE_MIN_NODES": "3"}, "COMPUTE_MAX_NODES is 2: it must be at least 1 and at least min_nodes"),
    ({"COMPUTE_RATES": "Standard_DS3_v2"},
     "COMPUTE_RATES is 'Standard_DS3_v2': it has 'Standard_DS3_v2', which is not SIZE=RATE"),
    ({"COMPUTE_RATES": "=0.3"}, "COMPUTE_RATES is '=0.3': it has '=0.3', which is not SIZE=RATE"),
    ({"TRAINING_SLOWDOWN_FACTOR": "1"}, "TRAINING_SLOWDOWN_FACTOR is 1.0: it must be more than 1"),
])
def test_a_refused_value_is_named_by_its_setting(env, message):
    with pytest.raises(SettingsError) as error:
        policies(**env)
    assert message in str(error.value)


def test_policies_check_their_values_when_built_directly_too():
    with pytest.raises(PolicyError, match="increasing"):
        RolloutPolicy(steps=(100, 50))
    with pytest.raises(PolicyError, match="at least 1"):
        MonitorPolicy(min_rows=0)


def test_the_training_window_comes_from_its_setting_and_a_models_file_entry_without_one_keeps_it():
    import textwrap

    from lifecycle.bootstrap import build_policies
    from lifecycle.models_file import load_models_file
    from lifecycle.settings import Settings, SettingsError
    base = build_policies(Settings.from_env({"AzureWebJobsStorage": "x", "TRAINING_WINDOW": "28 days"}))
    assert str(base.model.training_window) == "28 days"
    with pytest.raises(SettingsError, match="app setting TRAINING_WINDOW is 'a month': use 'all'"):
        build_policies(Settings.from_env({"AzureWebJobsStorage": "x", "TRAINING_WINDOW": "a month"}))
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "m.yaml").write_text(textwrap.dedent("""
            models:
              a: {target: y, data: {root: a/}}
              b: {target: y, data: {root: b/, window: 3 drops}}
        """))
        a, b = load_models_file("m.yaml", base, Path(folder))
    assert str(a.model.training_window) == "28 days" and str(b.model.training_window) == "3 drops"
