"""The monitoring report's plots: matplotlib figures (the object API, no pyplot, so no global backend state)
inlined as SVG with text kept as text, and the reference-against-current distribution of one feature."""
from __future__ import annotations

import io
import math
import re
from contextlib import ExitStack
from datetime import datetime, timedelta

from monitoring.report_format import as_float, mpl_text, none_note, short

REFERENCE_COLOUR, CURRENT_COLOUR = "#9aa5b1", "#d9534f"


class Plots:
    """matplotlib figures as inline SVG: text kept as text, ids unique per figure, no timestamp."""

    def __enter__(self) -> Plots:
        import matplotlib
        import matplotlib.dates  # registers the datetime converter
        from matplotlib.figure import Figure
        self._figure, self._dates, self._count = Figure, matplotlib.dates, 0
        self._stack = ExitStack()
        self._stack.enter_context(matplotlib.rc_context({
            "svg.fonttype": "none", "svg.hashsalt": "mlops-report", "font.size": 8,
            "axes.spines.top": False, "axes.spines.right": False}))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def figure(self, width: float, height: float):
        return self._figure(figsize=(width, height))

    def colour(self, i: int, n: int):
        import matplotlib
        return matplotlib.colormaps["tab10" if n <= 10 else "tab20"](i % 20)

    def time_axis(self, fig, x: list) -> None:
        if x and isinstance(x[0], datetime):
            locator = self._dates.AutoDateLocator(maxticks=8)
            for ax in fig.axes:
                if min(x) == max(x):               # one point in time: give the axis an hour either side
                    ax.set_xlim(x[0] - timedelta(hours=1), x[0] + timedelta(hours=1))
                ax.xaxis.set_major_locator(locator)
                ax.xaxis.set_major_formatter(self._dates.ConciseDateFormatter(locator))
        else:
            for ax in fig.axes:
                ax.set_xlabel("window")

    def svg(self, fig) -> str:
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
        self._count += 1
        text = buffer.getvalue()
        prefix = f"r{self._count}-"
        return re.sub(r'(\bid="|url\(#|href="#)', lambda m: m.group(1) + prefix, text[text.index("<svg"):])


def distribution_plot(plots: Plots, feature: dict) -> str:
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter
    bins = [str(b) for b in feature.get("bins") or []]
    reference, current = shares_of(feature.get("reference_counts")), shares_of(feature.get("current_counts"))
    n = min(len(bins), len(reference), len(current))
    if n == 0:
        return none_note("No bins to plot.")
    labels = [mpl_text(short(b, 16)) for b in bins[:n]]
    rotate = n > 8 or max(map(len, labels)) * n > 60
    bottom = 0.3 + (0.055 * max(map(len, labels)) if rotate else 0.15)
    fig = plots.figure(max(3.2, min(9.0, 1.0 + 0.26 * n)), 1.7 + bottom)
    ax = fig.add_subplot()
    width = 0.4
    for offset, shares, colour in ((-width, reference, REFERENCE_COLOUR), (0.0, current, CURRENT_COLOUR)):
        ax.add_collection(PolyCollection(
            [[(i + offset, 0), (i + offset, s), (i + offset + width, s), (i + offset + width, 0)]
             for i, s in enumerate(shares[:n])], facecolors=colour, edgecolors="none"))
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylim(0, max(max(reference[:n]), max(current[:n]), 1e-9) * 1.12)
    ax.set_xticks(range(n), labels, rotation=90 if rotate else 0, fontsize=7)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.legend(handles=[Patch(color=REFERENCE_COLOUR, label="reference"), Patch(color=CURRENT_COLOUR, label="current")],
              loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize=7, frameon=False)
    height = 1.7 + bottom
    fig.subplots_adjust(left=0.55 / fig.get_figwidth(), right=0.98, bottom=bottom / height, top=1 - 0.3 / height)
    return plots.svg(fig)


def shares_of(counts) -> list[float]:
    values = [as_float(c) for c in counts or []]
    values = [v if math.isfinite(v) else 0.0 for v in values]
    total = sum(values)
    return [v / total for v in values] if total > 0 else [0.0] * len(values)


def finite_points(x: list, values: list[float]) -> tuple[list, list[float]]:
    """The points that have a value: a line then joins the windows around a missing one."""
    kept = [(a, v) for a, v in zip(x, values) if math.isfinite(v)]
    return [a for a, _ in kept], [v for _, v in kept]
