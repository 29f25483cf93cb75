"""The histories `mlops simulate` replays: a day at a time, the rows production was asked that day (features and
the label, which lands at the day's end as its data drop), with the drifts the history is known to hold.

`generate` makes one from a classic concept-drift stream, so that every policy meets the same, known changes:

* "sea" — SEA concepts (Street & Kim 2001): x1, x2, x3 ~ U[0, 10] (x3 irrelevant), label = int(x1 + x2 <= θ),
  θ cycling through 8, 9, 7, 9.5 (concept k has θ = THETAS[k % 4]).
* "hyperplane" — the rotating hyperplane (Hulten et al. 2001): f0..f9 ~ U[0, 1], label = int(Σ wᵢ·fᵢ >= ½·Σ wᵢ),
  concept k with its own weights ~ U[0, 1]¹⁰ (drawn up front).

Drifts (`parse_drifts`: "sudden@D", "gradual@A-B", comma-separated, days since day 0, B exclusive) move from concept
k to k + 1. A sudden drift switches at day D. Within a gradual drift, day d's share of the new concept is
p = (d - A + ½) / (B - A): in SEA each row follows the new concept with probability p (MOA's gradual drift); in the
hyperplane the day's weights are (1 - p)·w_k + p·w_{k+1} (the hyperplane turns a little each day), and each row's
inputs come from the new concept's input distribution with probability p.

The inputs shift with the concept too, so that a data-drift monitor sees the change and not only the labels: on an
odd concept (k = 1, 3, ...) the first feature is drawn 15% of its range lower — x1 ~ U[-1.5, 8.5] instead of
U[0, 10] (SEA), f0 ~ U[-0.15, 0.85] instead of U[0, 1] (hyperplane): about 0.52 standard deviations, which a
two-sample KS test on a day of 1,000 rows against a day before finds (KS statistic 0.15; p < 1e-9). The label is
the concept applied to the shifted values. Each drift thus moves the first feature by 0.52 sd, one way or back.

`seasonal=True` adds, with no change of concept, a yearly swing to the second feature (x2 / f1): its mean is
raised by ½ sd · sin(2π · t / 365), t the days since 1 January of the start's year. That is data drift that
retraining does not mend (bait for false alarms), so it is not among the history's `drifts`.

Label noise flips a share `noise` of the labels. One numpy Generator (default_rng(seed)) draws everything in a
fixed order — the concepts' weights, then per day the features, the rows' concept draws and the flips — so the
same arguments give identical frames."""
from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .outcome import DriftPoint

KINDS = ("sea", "hyperplane")
TARGET = "label"
THETAS = (8.0, 9.0, 7.0, 9.5)          # SEA's concepts, in turn
SHIFT = 0.15                           # of the first feature's range, on odd concepts (downwards)
SEASONAL_SD = 0.5                      # the seasonal swing's amplitude, in the feature's standard deviations
PERIOD = 365
HYPERPLANE_FEATURES = 10


@dataclass(frozen=True)
class History:
    """A history to replay: `days[i]` holds the rows production was asked on day i (date start + i): features and
    the target column; the simulator also lands them, labelled, as that day's data drop at its end."""
    name: str                          # "sea", "hyperplane", or the folder's name
    description: str                   # one sentence for the report
    target: str                        # the label column
    task: str                          # "classification" | "regression"
    start: datetime.date               # the date of days[0]
    days: tuple[pd.DataFrame, ...]
    drifts: tuple[DriftPoint, ...]     # known changes, day indices relative to days[0]; () for a folder
    drifts_known: bool = False         # generated: `drifts` is all there is (so any other alarm is a false one)


def parse_drifts(spec: str, days: int) -> tuple[DriftPoint, ...]:
    """The drifts a spec names ("sudden@120,gradual@240-270"; "" or "none" for none), sorted by day, with empty
    `what`. Raises ValueError naming the part that is malformed, outside days 1..days-1 (a drift needs a day
    before it), empty (B <= A) or overlapping another."""
    text = (spec or "").strip().lower()
    if text in ("", "none"):
        return ()
    points: list[tuple[DriftPoint, str]] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            raise ValueError(f"drifts {spec!r}: an empty entry between commas "
                             f"(write e.g. 'sudden@120,gradual@240-270')")
        kind, at, where = part.partition("@")
        kind = kind.strip()
        if not at:
            raise ValueError(f"drift {part!r}: expected sudden@DAY or gradual@FIRST-END "
                             f"(e.g. sudden@120, gradual@240-270)")
        if kind == "sudden":
            if not re.fullmatch(r"\s*\d+\s*", where):
                raise ValueError(f"drift {part!r}: a sudden drift takes one day (e.g. sudden@120)")
            day = int(where)
            if not 1 <= day <= days - 1:
                raise ValueError(f"drift {part!r}: day {day} is outside 1-{days - 1} (the history has {days} days, "
                                 f"and a drift needs a day before it)")
            points.append((DriftPoint(day, day + 1, "sudden"), part))
        elif kind == "gradual":
            match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", where)
            if not match:
                raise ValueError(f"drift {part!r}: a gradual drift takes its first day and the day it ends, "
                                 f"exclusive (e.g. gradual@240-270)")
            first, ends = int(match[1]), int(match[2])
            if ends <= first:
                raise ValueError(f"drift {part!r}: it ends ({ends}) before it starts ({first}); write gradual@A-B "
                                 f"with B > A")
            if first < 1 or ends > days:
                raise ValueError(f"drift {part!r}: days {first}-{ends} are outside 1-{days} (the history has "
                                 f"{days} days, and a drift needs a day before it)")
            points.append((DriftPoint(first, ends, "gradual"), part))
        else:
            raise ValueError(f"drift {part!r}: unknown kind {kind!r} (sudden@DAY or gradual@FIRST-END)")
    points.sort(key=lambda p: (p[0].day, p[0].ends))
    for (before, before_text), (after, after_text) in zip(points, points[1:]):
        if after.day < before.ends:
            raise ValueError(f"drifts {before_text!r} and {after_text!r} overlap: a drift must end before the next "
                             f"starts")
    return tuple(point for point, _ in points)


def generate(kind: str = "sea", days: int = 365, seed: int = 0, drifts: str = "sudden@120,gradual@240-270",
             seasonal: bool = False, rows_per_day: int = 1000, noise: float = 0.05,
             start: datetime.date = datetime.date(2026, 1, 1)) -> History:
    """A generated history (see the module docstring for exactly what each kind, drift and option does)."""
    kind = (kind or "").strip().lower()
    if kind not in KINDS:
        raise ValueError(f"history kind {kind!r} is not one of {', '.join(KINDS)}")
    if days < 1:
        raise ValueError(f"days must be at least 1 (got {days})")
    if rows_per_day < 1:
        raise ValueError(f"rows_per_day must be at least 1 (got {rows_per_day})")
    if not 0.0 <= noise <= 0.5:
        raise ValueError(f"noise is the share of labels flipped: between 0 and 0.5 (got {noise})")
    points = parse_drifts(drifts, days)
    rng = np.random.default_rng(seed)
    stream = _Sea() if kind == "sea" else _Hyperplane(rng, len(points) + 1)
    year_offset = (start - datetime.date(start.year, 1, 1)).days
    frames = []
    for day in range(days):
        old, share = _concept_on(day, points)
        x = stream.inputs(rng, rows_per_day)
        new = rng.random(rows_per_day) < share                      # the rows drawn from the next concept
        flips = rng.random(rows_per_day) < noise
        concepts = old + new.astype(np.int64)
        x[:, 0] -= SHIFT * stream.scale * (concepts % 2)
        if seasonal:
            x[:, 1] += SEASONAL_SD * stream.sd * math.sin(2 * math.pi * (year_offset + day) / PERIOD)
        labels = stream.labels(x, concepts, old, share) ^ flips
        frame = pd.DataFrame(x, columns=stream.features)
        frame[TARGET] = labels.astype(np.int64)
        frames.append(frame)
    described = tuple(replace(point, what=stream.what(index, point)) for index, point in enumerate(points))
    return History(name=kind, description=_description(kind, days, rows_per_day, noise, points, seasonal, stream, seed),
                   target=TARGET, task="classification", start=start, days=tuple(frames), drifts=described,
                   drifts_known=True)


def _concept_on(day: int, points: tuple[DriftPoint, ...]) -> tuple[int, float]:
    """Day's concept (the index of the drifts it is past) and its share of the next one (0 outside a gradual drift)."""
    passed = 0
    for point in points:
        if point.kind == "sudden" and day >= point.day or day >= point.ends:
            passed += 1
        elif day >= point.day:                                     # within a gradual drift
            return passed, (day - point.day + 0.5) / (point.ends - point.day)
        else:
            break
    return passed, 0.0


class _Sea:
    features = ["x1", "x2", "x3"]
    scale = 10.0                                                   # the features' range
    sd = 10.0 / math.sqrt(12)

    def inputs(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        return rng.random((rows, 3)) * self.scale

    def labels(self, x: np.ndarray, concepts: np.ndarray, old: int, share: float) -> np.ndarray:
        thetas = np.asarray(THETAS)[concepts % len(THETAS)]
        return x[:, 0] + x[:, 1] <= thetas

    def what(self, index: int, point: DriftPoint) -> str:
        how = "" if point.kind == "sudden" else ", each row's chance of it rising linearly across the drift"
        return (f"concept: x1 + x2 <= {_num(THETAS[(index + 1) % 4])} (was {_num(THETAS[index % 4])}){how}; "
                f"inputs: x1 ~ {_range(self.scale, index + 1)} (was {_range(self.scale, index)})")


class _Hyperplane:
    features = [f"f{i}" for i in range(HYPERPLANE_FEATURES)]
    scale = 1.0
    sd = 1.0 / math.sqrt(12)

    def __init__(self, rng: np.random.Generator, concepts: int):
        self.weights = rng.random((concepts, HYPERPLANE_FEATURES))

    def inputs(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        return rng.random((rows, HYPERPLANE_FEATURES))

    def labels(self, x: np.ndarray, concepts: np.ndarray, old: int, share: float) -> np.ndarray:
        w = self.weights[old] if share == 0.0 else (1 - share) * self.weights[old] + share * self.weights[old + 1]
        return x @ w >= 0.5 * w.sum()

    def what(self, index: int, point: DriftPoint) -> str:
        before, after = self.weights[index], self.weights[index + 1]
        cosine = float(before @ after / (np.linalg.norm(before) * np.linalg.norm(after)))
        angle = math.degrees(math.acos(max(-1.0, min(1.0, cosine))))
        how = "to new random weights" if point.kind == "sudden" else "linearly across the drift"
        return (f"concept: the hyperplane turns {angle:.0f}° {how}; "
                f"inputs: f0 ~ {_range(self.scale, index + 1)} (was {_range(self.scale, index)})")


def _range(scale: float, concept: int) -> str:
    low = -SHIFT * scale if concept % 2 else 0.0
    return f"U[{_num(low)}, {_num(low + scale)}]"


def _num(value: float) -> str:
    return f"{value:g}"


def _description(kind: str, days: int, rows: int, noise: float, points: tuple[DriftPoint, ...], seasonal: bool,
                 stream: _Sea | _Hyperplane, seed: int) -> str:
    parts = ["SEA concepts" if kind == "sea" else "a rotating hyperplane",
             f"{days:,} days of {rows:,} rows", f"{noise:.0%} label noise"]
    for point in points:
        parts.append(f"sudden drift at day {point.day}" if point.kind == "sudden"
                     else f"gradual drift days {point.day}-{point.ends}")
    if not points:
        parts.append("no drift")
    if seasonal:
        parts.append(f"a yearly swing in {stream.features[1]}'s mean (seasonal, not a drift to recover from)")
    parts.append(f"seed {seed}")
    return ", ".join(parts)
