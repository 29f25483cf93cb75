"""The current window's whole-row sample, sums, fast binning and column-sliced Parquet reading."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.window import ROW_SAMPLE_CELLS, CurrentWindow, _Binner, read_csv, read_parquet
from training.reference_profile import assign_bins, build_profile


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(rows) * 3 + 10
    x[rng.random(rows) < 0.05] = np.nan
    c = pd.Series(rng.choice(["a", "b", "c", "d"], rows)).where(rng.random(rows) > 0.05, None)
    return pd.DataFrame({"x": x, "n": rng.integers(0, 1000, rows).astype(float), "c": c})


@pytest.fixture(scope="module")
def profile() -> dict:
    return build_profile(frame(3000, seed=1))


def pieces(df: pd.DataFrame, sizes: list[int]):
    start = 0
    for size in sizes:
        yield df.iloc[start:start + size]
        start += size
    if start < len(df):
        yield df.iloc[start:]


def test_row_sample_is_the_same_for_any_chunking(profile):
    df = frame(20_000)
    whole = CurrentWindow.for_profile(profile, row_sample_size=500).update(df)
    parts = CurrentWindow.for_profile(profile, row_sample_size=500)
    for piece in pieces(df, [1, 7, 499, 3000, 20, 9000]):
        parts.update(piece)
    table = pa.Table.from_pandas(df, preserve_index=False)
    arrow = CurrentWindow.for_profile(profile, row_sample_size=500)
    for batch in table.to_batches(max_chunksize=1234):
        arrow.update(batch)
    expected = whole.row_sample()
    assert expected is not None and len(expected) == 500 and list(expected.columns) == ["x", "n", "c"]
    pd.testing.assert_frame_equal(parts.row_sample(), expected)
    pd.testing.assert_frame_equal(arrow.row_sample(), expected)


def test_row_sample_holds_whole_raw_rows(profile):
    df = frame(4000)
    df["row"] = np.arange(len(df))                  # not profiled: not in the sample
    df["c"] = df["c"].astype("category")            # pandas categories read back as their strings
    sample = CurrentWindow.for_profile(profile, row_sample_size=300).update(df).row_sample()
    assert sample is not None and len(sample) == 300 and "row" not in sample
    assert sample["x"].dtype == np.float64 and sample["c"].dtype == object
    assert set(sample["c"].dropna()) <= {"a", "b", "c", "d"} and sample["c"].isna().any()
    # each sampled row is one row of the window, whole
    def rows(f: pd.DataFrame) -> set:
        return set(zip(f["x"].fillna(-1.0), f["n"], f["c"].astype(object).where(f["c"].notna(), "-")))
    assert rows(sample) <= rows(df) and len(rows(sample)) == 300


def test_row_sample_bounds(profile):
    small = CurrentWindow.for_profile(profile).update(frame(50))
    assert len(small.row_sample()) == 50                                   # fewer rows than the size: all of them
    assert CurrentWindow.for_profile(profile, row_sample_size=0).update(frame(50)).row_sample() is None
    empty = CurrentWindow.for_profile(profile).row_sample()
    assert empty is not None and len(empty) == 0 and list(empty.columns) == ["x", "n", "c"]
    wide = {"features": {f"f{i}": {"type": "numeric", "min": 0.0, "max": 1.0,
                                   "histogram": {"edges": [0.0, 0.5, 1.0], "counts": [1, 1]}} for i in range(1000)}}
    window = CurrentWindow.for_profile(wide)
    assert window._rows is not None and window._rows.size == ROW_SAMPLE_CELLS // 1000 < 5000


def test_totals_are_additive(profile):
    df = frame(10_000)
    df.loc[3, "x"] = np.inf                          # not finite: neither summed nor squared
    whole = CurrentWindow.for_profile(profile).update(df).features["x"]
    parts = CurrentWindow.for_profile(profile)
    for piece in pieces(df, [3, 4000, 1]):
        parts.update(piece)
    finite = df["x"][np.isfinite(df["x"])]
    for acc in (whole, parts.features["x"]):
        assert acc.total == pytest.approx(finite.sum(), rel=1e-12)
        assert acc.total_squares == pytest.approx((finite ** 2).sum(), rel=1e-12)


@pytest.mark.parametrize("kind", ["normal", "lognormal", "integers", "tiny_spread", "huge", "mixed_scale"])
def test_fast_bins_are_assign_bins(kind):
    rng = np.random.default_rng(3)
    ref = {"normal": rng.standard_normal(5000), "lognormal": rng.lognormal(0, 3, 5000),
           "integers": rng.integers(0, 7, 5000).astype(float), "tiny_spread": rng.standard_normal(5000) * 1e-8 + 1e6,
           "huge": rng.standard_normal(5000) * 1e300,
           "mixed_scale": np.concatenate([rng.standard_normal(4000), rng.standard_normal(1000) * 1e6])}[kind]
    for bins in (1, 2, 3, 20, 37):
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
        x = np.concatenate([rng.choice(ref, 5000), edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf),
                            [1e308, -1e308, 0.0, 5e-324]])
        x = x[np.isfinite(x)]
        assert np.array_equal(_Binner(edges)(x), assign_bins(x, edges))


def test_parquet_reads_only_the_profiled_columns_in_slices(profile, tmp_path, monkeypatch):
    df = frame(30_000)
    wide = pd.concat([df, pd.DataFrame({f"extra{i}": np.arange(len(df), dtype=float) for i in range(300)})], axis=1)
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.Table.from_pandas(wide, preserve_index=False), path, row_group_size=7000)
    asked: list[list[str]] = []
    original = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        asked.append(list(kwargs["columns"]))
        return original(self, *args, **kwargs)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    streamed = read_parquet(CurrentWindow.for_profile(profile, row_sample_size=400), path, read_bytes=20_000,
                            chunk_rows=999)
    assert asked and all(set(columns) <= {"x", "n", "c"} for columns in asked)
    assert any(len(columns) < 3 for columns in asked)                     # the row groups were read in slices
    whole = CurrentWindow.for_profile(profile, row_sample_size=400).update(df)
    assert streamed.rows == whole.rows == len(df)
    for name, acc in whole.features.items():
        other = streamed.features[name]
        assert np.array_equal(other.counts, acc.counts) and other.nulls == acc.nulls
        if name != "c":
            assert np.array_equal(other.sample, acc.sample)
    pd.testing.assert_frame_equal(streamed.row_sample(), whole.row_sample())


def test_csv_and_parquet_give_the_same_row_sample(profile, tmp_path):
    df = frame(5000)
    df.to_csv(tmp_path / "w.csv", index=False)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "w.parquet", row_group_size=1500)
    from_csv = read_csv(CurrentWindow.for_profile(profile, row_sample_size=200), tmp_path / "w.csv",
                        chunk_bytes=16 << 10).row_sample()
    from_parquet = read_parquet(CurrentWindow.for_profile(profile, row_sample_size=200),
                                tmp_path / "w.parquet").row_sample()
    pd.testing.assert_frame_equal(from_csv, from_parquet)


def test_a_thousand_column_window(tmp_path):
    rng = np.random.default_rng(5)
    spec = build_profile(pd.DataFrame({"f": rng.standard_normal(500)}))["features"]["f"]
    profile = {"features": {f"f{i}": spec for i in range(1000)}}      # one profile for each: quick to build
    current = pd.DataFrame(rng.standard_normal((3000, 1000)) + 0.01, columns=list(profile["features"]))
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.Table.from_pandas(current, preserve_index=False), path, row_group_size=1000)
    window = read_parquet(CurrentWindow.for_profile(profile), path, read_bytes=1 << 20)
    assert window.rows == 3000
    sample = window.row_sample()
    assert sample is not None and sample.shape == (ROW_SAMPLE_CELLS // 1000, 1000)
    acc = window.features["f7"]
    assert acc.counts.sum() == 3000 and acc.total == pytest.approx(current["f7"].sum())


def test_a_low_cardinality_number_is_one_category_whatever_its_type_in_production():
    """Trained on ints, served floats (a null turns a column float) or text: 1, 1.0 and "1.0" are one key."""
    from monitoring.drift import compare
    rng = np.random.default_rng(0)
    profile = build_profile(pd.DataFrame({"flag": rng.integers(0, 2, 4000), "x": rng.normal(size=4000)}))
    assert profile["features"]["flag"]["numeric_categories"]
    for served in (rng.choice([0.0, 1.0, np.nan], 4000, p=[0.5, 0.49, 0.01]), rng.choice(["0.0", "1.0"], 4000)):
        window = CurrentWindow.for_profile(profile).update(pd.DataFrame({"flag": served, "x": rng.normal(size=4000)}))
        flag = compare(profile, window).features["flag"]
        assert window.features["flag"].unseen == 0 and not flag.drifted
    shifted = CurrentWindow.for_profile(profile).update(
        pd.DataFrame({"flag": rng.choice([0.0, 1.0], 4000, p=[0.2, 0.8]), "x": rng.normal(size=4000)}))
    assert compare(profile, shifted).features["flag"].drifted            # 50/50 -> 20/80 seen
