"""Evidently's DataDriftPreset on each window against the reference (run in Evidently's own venv).

Two readings of the same report, with every default (per-column method chosen by Evidently from the
reference size and column type; drift_share 0.5):
  evidently      the dataset drift decision: share of drifted columns >= drift_share
  evidently-any  any one column drifted (what a user alerting on the per-column table would see)
Written for evidently 0.7 (Report / Dataset / DataDefinition; the preset's DriftedColumnsCount metric).

Report.run in 0.7 draws every plot as it computes (plotly figures per column: two thirds of its time on a
200-row window). The decision does not depend on them, and this bench asks for hundreds of reports, so the
renderers are replaced by no-ops here: the times printed are Evidently's decision alone, faster than what a
user running the preset pays.
"""
# mypy: disable-error-code="import-not-found,import-untyped"
# (runs in its own venv, beside common.py: the project's type check does not see those modules)
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import evidently  # noqa: E402
import pandas as pd  # noqa: E402
from common import manifest, run, run_windows, timed_setup  # noqa: E402
from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

DRIFT_SHARE = 0.5           # the preset's default, restated so the decision below uses the same number


def _skip_rendering() -> None:
    import evidently.core.report as core_report
    import evidently.metrics.column_statistics as column_statistics
    import evidently.presets.drift as preset_drift

    class NoWidgets:
        def render_html(self, obj):
            return []
    core_report.find_metric_renderer = lambda *args, **kwargs: NoWidgets()
    for value in vars(column_statistics).values():
        if isinstance(value, type) and "_render" in vars(value):
            value._render = lambda self, *args, **kwargs: []  # type: ignore[attr-defined]
    preset_drift.DataDriftPreset.render = lambda self, *args, **kwargs: []


def main() -> None:
    spec = manifest()
    _skip_rendering()
    definition = DataDefinition(numerical_columns=spec["numeric"], categorical_columns=spec["categorical"])

    def load_reference():
        return Dataset.from_pandas(pd.read_parquet(spec["reference"]), data_definition=definition)
    reference = timed_setup("evidently", evidently.__version__, load_reference)

    def decide(path: str) -> dict[str, bool]:
        current = Dataset.from_pandas(pd.read_parquet(path), data_definition=definition)
        snapshot = Report([DataDriftPreset(drift_share=DRIFT_SHARE)]).run(current, reference)
        for metric in snapshot.dict()["metrics"]:
            if metric["metric_name"].startswith("DriftedColumnsCount"):
                value = metric["value"]
                return {"evidently": value["share"] >= DRIFT_SHARE, "evidently-any": value["count"] > 0}
        raise RuntimeError("no DriftedColumnsCount in the report")
    run_windows(spec["windows"], decide, ["evidently", "evidently-any"])


if __name__ == "__main__":
    run(main)
