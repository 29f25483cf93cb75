"""The whole local stack killed with SIGKILL at 21 points of the lifecycle, then started again: every
lifecycle ends (promoted, rolled back, or stopped at the gate), serving comes back, no process survives the
crash, no job is stuck, registry and state agree. Long: `make faults` (CI runs it)."""
from __future__ import annotations

import pytest

from tests.faults.scenarios import CRASHES, crash_scenario

pytestmark = [pytest.mark.stack, pytest.mark.faults, pytest.mark.timeout(3600)]


def test_the_chain_recovers_from_a_crash_at_every_point(tmp_path):
    outcomes = crash_scenario(tmp_path, CRASHES, progress=lambda o: print(
        f"{o.case}: crashed {o.crashed}, recovered {o.recovered} in {o.seconds} s, end {o.end!r}, "
        f"serving after {o.serving_after_s} s, orphans {o.orphans}, problems {o.problems}", flush=True))
    assert len(outcomes) >= 20
    failed = [o for o in outcomes if not o.recovered]
    assert failed == [], "\n".join(f"{o.case} ({o.plan}): crashed {o.crashed}, orphans {o.orphans}, "
                                   f"problems {o.problems}" for o in failed)
