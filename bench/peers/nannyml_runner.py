"""NannyML's drift calculators on each window against the reference (run in NannyML's own venv).

  nannyml-univariate  UnivariateDriftCalculator, default methods (Jensen-Shannon for every column) and
                      default thresholds (reference mean + 3 std of the method's value over the reference
                      chunks); drifted when any column alerts
  nannyml-pca         DataReconstructionDriftCalculator (PCA keeping 65% of the variance), default
                      threshold (the same 3-std band of the reconstruction error over reference chunks)

NannyML judges chunks. The reference is split into chunks of `reference_chunk_rows` (the window's size
when the reference holds at least 10 such chunks, else reference rows / 10: the band is then that of
smaller chunks, wider than a window-sized chunk's, so the calculators are conservative at those sizes),
and the window is calculated as one chunk. Written for nannyml 0.13.
"""
# mypy: disable-error-code="import-not-found,import-untyped"
# (runs in its own venv, beside common.py: the project's type check does not see those modules)
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nannyml  # noqa: E402
import pandas as pd  # noqa: E402
from common import manifest, run, run_windows, timed_setup  # noqa: E402
from nannyml.chunk import CountBasedChunker  # noqa: E402


def _analysis_alerts(result) -> pd.DataFrame:
    """The window's row of a result (calculate() keeps the reference chunks' rows before it)."""
    return result.filter(period="analysis").to_df()


def main() -> None:
    spec = manifest()
    columns = spec["numeric"] + spec["categorical"]
    chunk = int(spec["reference_chunk_rows"])

    def fit():
        reference = pd.read_parquet(spec["reference"])
        univariate = nannyml.UnivariateDriftCalculator(
            column_names=columns, treat_as_categorical=spec["categorical"], chunk_size=chunk).fit(reference)
        pca = nannyml.DataReconstructionDriftCalculator(column_names=columns, chunk_size=chunk).fit(reference)
        # the window is one chunk, whatever its size: the reference chunks set the thresholds only
        univariate.chunker = CountBasedChunker(chunk_number=1)
        pca.chunker = CountBasedChunker(chunk_number=1)
        return univariate, pca
    univariate, pca = timed_setup("nannyml", nannyml.__version__, fit)

    def decide(path: str) -> dict[str, tuple[bool, float]]:
        start = time.perf_counter()
        window = pd.read_parquet(path)
        read = time.perf_counter() - start
        uni = _analysis_alerts(univariate.calculate(window))
        alerts = [c for c in uni.columns if c[-1] == "alert"]
        drifted = bool(uni[alerts].fillna(False).to_numpy().any())
        middle = time.perf_counter()
        multi = _analysis_alerts(pca.calculate(window))
        pca_drifted = bool(multi[("reconstruction_error", "alert")].fillna(False).any())
        # each calculator is charged the file read, as if it ran alone
        return {"nannyml-univariate": (drifted, middle - start),
                "nannyml-pca": (pca_drifted, time.perf_counter() - middle + read)}
    run_windows(spec["windows"], decide, ["nannyml-univariate", "nannyml-pca"])


if __name__ == "__main__":
    run(main)
