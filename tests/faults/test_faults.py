"""The fault-injection suite on the local stack run as a user runs it (`mlops up` in its own process):
replays, poison and concurrency here, beside the crash matrix in test_crash_matrix.py (both `make faults`: these
three took 7 minutes of `make test`).
bench/faults.py runs the same scenarios and prints their figures."""
from __future__ import annotations

import pytest

from tests.faults.scenarios import concurrency_scenario, poison_scenario, replay_scenario

pytestmark = [pytest.mark.stack, pytest.mark.faults, pytest.mark.timeout(1200)]


def test_replayed_events_start_nothing_twice_and_never_promote_an_older_version(tmp_path):
    result = replay_scenario(tmp_path, lifecycles=3, copies=3)
    assert result.replays >= 3 * result.events > 0
    assert result.duplicates == 0 and result.re_promotions == 0, result.problems
    assert result.problems == []
    assert len(result.outcomes) == 3 and not any(o.startswith("training") for o in result.outcomes), result.outcomes


def test_poison_is_rejected_with_a_reason_and_nothing_is_lost(tmp_path):
    result = poison_scenario(tmp_path)
    assert len(result.outcomes) >= 40
    missed = [f"{o.case.name}: {o.seen}" for o in result.outcomes if not o.rejected_with_reason]
    assert missed == []
    assert result.server_errors == [] and result.lost == [] and result.problems == []
    assert not result.good_drop_after.startswith("training"), result.good_drop_after     # it trained


def test_drops_an_alert_and_a_forced_retrain_at_one_instant_train_each_batch_once(tmp_path):
    result = concurrency_scenario(tmp_path)
    assert result.problems == [] and result.overlapping_rollouts == [] and result.lost_decisions == []
    assert all(n == 1 for n in result.trainings_per_batch.values()), result.trainings_per_batch
