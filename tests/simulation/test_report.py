"""The simulation's reports: the terminal table at 80 columns, the JSON form, and the HTML page (its chart, its
markers, its escaping)."""
from __future__ import annotations

import dataclasses
import json
import re

from rich.console import Console

from mlops.simulation.outcome import (
    DailyScore,
    DriftPoint,
    Marker,
    PolicyRun,
    SimulationResult,
)
from mlops.simulation.report_html import page
from mlops.simulation.report_text import print_result, table, to_json
from mlops.simulation.scoring import recommend, score

NAMES = ("never", "weekly", "daily", "on-drift", "on-performance", "<script>")
DRIFTS = (DriftPoint(30, 31, "sudden", "concept: SEA threshold 8 → 9.5"), DriftPoint(60, 70, "gradual", "covariate"))


def policy_run(name: str, trainings: int, lag: int, alerts: tuple[float, ...] = ()) -> PolicyRun:
    """90 days at 0.88, a dip of 0.2 for `lag` days after each drift's start."""
    daily = tuple(DailyScore(day, f"2026-{1 + day // 31:02d}-{1 + day % 31:02d}",
                             None if day % 13 == 5 else 0.88 - 0.2 * any(d.day <= day < d.day + lag for d in DRIFTS)
                             + 0.004 * (day % 3), 150) for day in range(90))
    markers = [Marker(day + 0.4, "trained") for day in range(0, 90, max(1, 90 // trainings))][:trainings]
    markers += [Marker(31.5, "promoted", "v2"), Marker(61.5, "rolled_back", "v3: errors on green"),
                Marker(45.2, "rejected", "a likely leak"), Marker(-3.0, "trained", "the first model, in warm-up")]
    markers += [Marker(day, "alert", "input drift in x") for day in alerts]
    return PolicyRun(name, f"the {name} policy", {"RETRAIN_ON": name, "RETRAIN_SCHEDULE": "0 2 * * *"}, daily,
                     tuple(markers), trainings, 0, trainings, 1, 1, 1, len(alerts), 12, 11.5 * trainings, 3.0, 0.5)


def sample_result(drifts: tuple[DriftPoint, ...] | None = DRIFTS, names: tuple[str, ...] = NAMES) -> SimulationResult:
    runs = [policy_run(name, trainings, lag, alerts) for name, trainings, lag, alerts in zip(
        names, (1, 13, 90, 4, 5, 3), (90, 6, 2, 3, 4, 5), ((), (), (), (30.2, 30.7, 31.1, 61.0, 15.0), (), ()))]
    outcomes = [score(r, drifts) for r in runs]
    return SimulationResult(history="SEA concepts: a sudden and a gradual drift", task="classification",
                            metric="accuracy", start="2026-01-01", days=90, seed=7, drifts=drifts or (),
                            outcomes=tuple(outcomes), recommendation=recommend(outcomes, metric="accuracy"),
                            warmup_days=14, notes=("labels arrive a day late",))


def rendered(result: SimulationResult, width: int = 80) -> str:
    console = Console(width=width, record=True, color_system=None)
    print_result(result, console)
    return console.export_text()


def test_the_table_fits_80_columns_without_cutting_a_policy_name():
    result = sample_result()
    console = Console(width=80, record=True, color_system=None)
    console.print(table(result))
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= 80
    rows = text.splitlines()
    for o in result.outcomes:
        row = next(line for line in rows if line.startswith(o.run.name + " "))
        assert f"{o.mean_metric:.3f}" in row and f" {o.run.trainings} " in row
    assert "…" not in text
    for word in ("recovery", "false/", "missed", "alerts", "train"):
        assert word in text
    # the never-retrain policy did not recover from the first drift; the second found it already down (0 days)
    assert re.search(r"^never .* never, 0d ", text, re.M)


def test_print_result_says_what_was_replayed_the_drifts_and_the_recommendation():
    result = sample_result()
    text = rendered(result)
    assert max(map(len, text.splitlines())) <= 80
    flat = " ".join(text.split())
    assert ("SEA concepts: a sudden and a gradual drift: 90 days from 2026-01-01 after 14 days of warm-up, "
            "seed 7 (classification, accuracy)") in flat
    assert "day 30 (2026-01-31): sudden, concept: SEA threshold 8 → 9.5" in flat
    assert "days 60–69 (2026-03-02): gradual, covariate" in flat
    assert result.recommendation is not None
    assert f"recommended: {result.recommendation.policy}: {result.recommendation.reason}" in flat
    assert "labels arrive a day late" in flat


def test_unknown_drifts_show_a_dash_and_say_so():
    result = sample_result(drifts=None)
    assert all(o.alarms is None for o in result.outcomes)
    text = rendered(result, width=120)
    assert "drifts not known" in text
    assert re.search(r"^never .* — +— +", text, re.M)           # recovery and false/missed


def test_a_long_policy_name_folds_but_is_never_cut():
    name = "retrain-when-the-weekly-accuracy-drops-by-five-points"
    text = rendered(sample_result(names=(name, *NAMES[1:])))
    assert max(map(len, text.splitlines())) <= 80
    assert "…" not in text
    assert name in "".join(line.split(" ", 1)[0] for line in text.splitlines())


def test_to_json_is_plain_and_round_trips():
    result = sample_result()
    data = to_json(result)
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert list(data) == [f.name for f in dataclasses.fields(SimulationResult)]
    assert result.recommendation is not None
    assert data["recommendation"] == dataclasses.asdict(result.recommendation)
    first = data["outcomes"][0]
    assert list(first) == ["run", "mean_metric", "final_metric", "recoveries", "alarms"]
    assert first["run"]["daily"][0] == {"day": 0, "date": "2026-01-01", "metric": 0.88, "labelled": 150}
    assert first["alarms"] == {"detected": 0, "missed": 2, "false": 0, "window_days": 14}
    odd = dataclasses.replace(result, outcomes=(dataclasses.replace(result.outcomes[0], mean_metric=float("nan")),))
    assert to_json(odd)["outcomes"][0]["mean_metric"] is None
    assert to_json(sample_result(drifts=None))["outcomes"][0]["alarms"] is None


def test_the_page_draws_a_line_per_policy_and_each_decision():
    result = sample_result()
    html = page(result)
    assert html.count("<polyline") == len(result.outcomes)
    assert html.count('class="drift sudden"') == 2 and html.count('class="drift gradual"') == 2   # chart, strips
    for kind in ("trained", "promoted", "rolled_back", "rejected", "alert"):
        expected = sum(1 for o in result.outcomes for m in o.run.markers if m.kind == kind and m.day >= 0)
        assert html.count(f'class="marker {kind}"') == expected > 0
    assert result.recommendation is not None
    assert f"Recommended: {result.recommendation.policy}" in html
    for svg in re.findall(r"<svg [^>]*>(?:<title>)?", html):
        if 'aria-hidden="true"' not in svg:
            assert "aria-label=" in svg and svg.endswith("<title>")
    assert "RETRAIN_SCHEDULE" in html and "<details>" in html
    assert 'width:100%' in html and "viewBox" in html


def test_the_page_escapes_every_name_and_loads_nothing():
    html = page(sample_result())
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert 'data-policy="&lt;script&gt;"' in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)


def test_the_page_without_labels_or_known_drifts_still_renders():
    result = sample_result(drifts=None)
    empty = dataclasses.replace(result, outcomes=tuple(
        dataclasses.replace(o, run=dataclasses.replace(o.run, daily=()), mean_metric=None, final_metric=None)
        for o in result.outcomes), recommendation=None)
    html = page(empty)
    assert "<polyline" not in html and "No labelled day to plot" in html
    assert "No recommendation" in html and "not known" in html
