"""The policies `mlops simulate` compares: the built-in ones, a policies file of app settings (both its forms, and
every way it can be wrong, each named in the error), `--set`, and choosing policies by name. No simulation runs."""
from __future__ import annotations

import os

import pytest

from mlops.simulation.candidates import (
    BUILT_IN,
    PolicyFileError,
    choose,
    known_settings,
    load_policies,
    parse_settings,
)
from mlops.simulation.engine import SCHEDULES, Candidate, SimOptions, app_settings, policies_of
from mlops.simulation.histories import generate


def written(tmp_path, text: str, name: str = "policies.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_mapping_form_gives_a_policy_per_entry_with_its_settings_as_text(tmp_path):
    path = written(tmp_path, """
policies:
  drift-sensitive:
    description: retrain on drift, with a lower PSI threshold
    settings:
      RETRAIN_ON: drift
      DRIFT_THRESHOLDS: psi=0.1
      RETRAIN_COOLDOWN_MINUTES: 60
  every-3-days:
    settings: {RETRAIN_ON: schedule, RETRAIN_SCHEDULE: "0 0 2 */3 * *", ROLLOUT_ON_NEW_MODEL: true,
               ROLLOUT_STEPS: [10, 50, 100]}
""")
    first, second = load_policies(path)
    assert first == Candidate("drift-sensitive", {"RETRAIN_ON": "drift", "DRIFT_THRESHOLDS": "psi=0.1",
                                                  "RETRAIN_COOLDOWN_MINUTES": "60"},
                              "retrain on drift, with a lower PSI threshold")
    assert second.name == "every-3-days" and second.description == ""
    # YAML's numbers, booleans and lists become the text an app setting holds
    assert second.settings == {"RETRAIN_ON": "schedule", "RETRAIN_SCHEDULE": "0 0 2 */3 * *",
                               "ROLLOUT_ON_NEW_MODEL": "true", "ROLLOUT_STEPS": "10,50,100"}


def test_the_list_form_names_each_policy_in_it(tmp_path):
    path = written(tmp_path, """
policies:
  - name: cautious
    description: drift, slowly
    settings: {RETRAIN_ON: drift, RETRAIN_COOLDOWN_MINUTES: 2880}
  - name: nightly
    settings: {RETRAIN_ON: schedule}
""")
    assert load_policies(path) == [
        Candidate("cautious", {"RETRAIN_ON": "drift", "RETRAIN_COOLDOWN_MINUTES": "2880"}, "drift, slowly"),
        Candidate("nightly", {"RETRAIN_ON": "schedule"}, "")]


@pytest.mark.parametrize("text, says", [
    ("policies:\n  p1:\n    settings: {RETRAIN_ON: drift}\n    schedule: daily\n",
     ["policy 'p1'", "unknown key(s) schedule"]),
    ("policies:\n  p1:\n    description: no settings\n", ["policy 'p1'", "`settings:`"]),
    ("policies:\n  p1:\n    settings: RETRAIN_ON=drift\n", ["policy 'p1'", "`settings:`"]),
    ("policies:\n  p1:\n    settings: {RETRAIN_ONN: drift}\n",
     ["policy 'p1'", "RETRAIN_ONN is not an app setting", "(did you mean RETRAIN_ON?)"]),
    ("policies:\n  p1:\n    settings: {TOTALLY_UNRELATED: 1}\n",
     ["policy 'p1'", "TOTALLY_UNRELATED is not an app setting"]),
    ("policies:\n  - name: p1\n    settings: {RETRAIN_ON: drift}\n  - settings: {RETRAIN_ON: never}\n",
     ["expected `policies:`"]),
    ("policies: {}\n", ["expected `policies:`"]),
    ("retrain: drift\n", ["expected `policies:`"]),
    ("", ["expected `policies:`"]),
    ("policies:\n  p1: [unclosed\n", ["is not valid YAML"]),
    ("policies:\n  p1:\n    settings: {RETRAIN_ON: }\n", ["policy 'p1'", "RETRAIN_ON: has no value"]),
    ("policies:\n  p1:\n    settings: {DRIFT_THRESHOLDS: {psi: 0.1}}\n",
     ["policy 'p1'", "DRIFT_THRESHOLDS: is a mapping"]),
    ("policies:\n  p1:\n    settings: {RETRAIN_ONN: }\n", ["policy 'p1'", "RETRAIN_ONN is not an app setting"]),
    ("policies:\n  - name: p1\n    settings: {RETRAIN_ON: drift}\n  - name: p1\n    settings: {RETRAIN_ON: never}\n",
     ["policy 'p1' named more than once"]),
])
def test_a_policies_file_that_cannot_be_used_names_the_file_the_policy_and_the_key(tmp_path, text, says):
    path = written(tmp_path, text)
    with pytest.raises(PolicyFileError) as raised:
        load_policies(path)
    message = str(raised.value)
    assert str(path) in message
    for part in says:
        assert part in message
    if "TOTALLY" in text:
        assert "did you mean" not in message         # no hint is better than a far-fetched one


def test_a_policies_file_that_cannot_be_read_is_named(tmp_path):
    absent = tmp_path / "absent.yaml"
    with pytest.raises(PolicyFileError, match=r"cannot read the policies file .*absent\.yaml: No such file"):
        load_policies(absent)
    with pytest.raises(PolicyFileError, match="cannot read the policies file"):
        load_policies(tmp_path)                      # a folder
    if os.name == "posix" and os.geteuid() != 0:
        locked = written(tmp_path, "policies: {}\n", "locked.yaml")
        locked.chmod(0)
        with pytest.raises(PolicyFileError, match="cannot read the policies file .*locked.yaml: Permission denied"):
            load_policies(locked)


def test_a_policies_file_that_is_not_text_is_named(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00policies")
    with pytest.raises(PolicyFileError, match=r"binary\.yaml is not UTF-8 text"):
        load_policies(path)


def test_set_parses_name_value_pairs_into_app_settings():
    assert parse_settings(["ROLLOUT_STEPS=50,100", " GATE_MARGIN = 0.01 ", "DRIFT_THRESHOLDS=psi=0.1"], "--set") == {
        "ROLLOUT_STEPS": "50,100", "GATE_MARGIN": "0.01", "DRIFT_THRESHOLDS": "psi=0.1"}
    assert parse_settings(["RETRAIN_SCHEDULE=0 0 3 * * *"], "--set") == {"RETRAIN_SCHEDULE": "0 0 3 * * *"}
    assert parse_settings([], "--set") == {}


@pytest.mark.parametrize("pair, says", [
    ("FOO=1", "--set: FOO is not an app setting the function app reads"),
    ("GATE_MARGN=0.1", "(did you mean GATE_MARGIN?)"),
    ("RETRAIN_ON", "--set 'RETRAIN_ON': use NAME=VALUE"),
    ("=drift", "--set '=drift': use NAME=VALUE"),
])
def test_set_refuses_what_is_not_an_app_setting(pair, says):
    with pytest.raises(PolicyFileError) as raised:
        parse_settings([pair], "--set")
    assert says in str(raised.value)


def test_the_timers_schedules_are_settings_a_policy_may_set():
    assert set(SCHEDULES) <= known_settings()
    assert {"RETRAIN_ON", "DRIFT_THRESHOLDS", "GATE_MARGIN", "ROLLOUT_STEPS"} <= known_settings()


def test_choose_without_names_gives_every_policy_in_order():
    assert choose(list(BUILT_IN), []) == list(BUILT_IN)
    assert [c.name for c in BUILT_IN] == ["never", "weekly", "daily", "on-drift", "on-performance"]


def test_choose_gives_the_named_policies_in_the_order_named_once_each():
    chosen = choose(list(BUILT_IN), ["on-drift", "never", "on-drift"])
    assert [c.name for c in chosen] == ["on-drift", "never"]


def test_choose_an_unknown_name_lists_the_known_ones():
    own = Candidate("mine", {"RETRAIN_ON": "drift"})
    with pytest.raises(PolicyFileError) as raised:
        choose([*BUILT_IN, own], ["never", "montly", "hourly"])
    assert str(raised.value) == ("no policy named montly, hourly: the policies are never, weekly, daily, on-drift, "
                                 "on-performance, mine")


def test_a_file_policy_named_like_a_built_in_replaces_it_in_place():
    own = Candidate("weekly", {"RETRAIN_ON": "schedule", "RETRAIN_SCHEDULE": "0 0 2 * * 0"}, "Sundays")
    every = choose([*BUILT_IN, own], [])
    assert [c.name for c in every] == ["never", "weekly", "daily", "on-drift", "on-performance"]
    assert every[1] is own
    assert choose([*BUILT_IN, own], ["weekly"]) == [own]


@pytest.fixture(scope="module")
def history():
    return generate("sea", days=3, drifts="none", rows_per_day=20, seed=0)


@pytest.mark.parametrize("candidate", BUILT_IN, ids=lambda c: c.name)
def test_each_built_in_policy_builds_the_apps_policies(history, candidate):
    settings = app_settings(history, candidate, SimOptions(warmup_days=1))
    for name, value in candidate.settings.items():
        assert settings[name] == value
    assert settings["TARGET_COLUMN"] == history.target
    policies = policies_of(history, settings)
    assert policies.model.task == "classification"
    assert candidate.description


def test_a_policy_overrides_the_base_settings_which_override_the_simulations(history):
    base = {"MONITOR_MIN_ROWS": "50", "RETRAIN_ON": "data"}
    settings = app_settings(history, BUILT_IN[0], SimOptions(base_settings=base))
    assert settings["MONITOR_MIN_ROWS"] == "50" and settings["RETRAIN_ON"] == "never"
    assert settings["MONITOR_WINDOW_MINUTES"] == "1440"
