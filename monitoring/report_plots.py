"""The monitoring report's plots: matplotlib figures (the object API, no pyplot, so no global backend state)
inlined as SVG with text kept as text for the plots over time, and the reference-against-current
distribution of one feature: a numeric one as a histogram at its quantile bins' true widths (SVG written
here), a categorical one as horizontal bars (HTML)."""
from __future__ import annotations

import html
import io
import math
import re
from contextlib import ExitStack
from datetime import datetime, timedelta

from monitoring.report_format import as_float, none_note, short

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


def distribution_plot(plots: Plots | None, feature: dict, edges: list | None = None) -> str:
    """A feature's reference (grey) against current (red) distribution: a numeric feature with its bin edges
    as a histogram at the bins' true widths, a categorical one (or a numeric one without edges) as
    horizontal bars. `edges` (the profile's, for records written before FeatureDrift carried them) is used
    when the feature has none. `plots` is unused: kept so that callers need not know which kind is drawn."""
    bins = [str(b) for b in feature.get("bins") or []]
    reference, current = shares_of(feature.get("reference_counts")), shares_of(feature.get("current_counts"))
    n = min(len(bins), len(reference), len(current)) if bins else min(len(reference), len(current))
    if n == 0:
        return none_note("No bins to plot.")
    edges = [as_float(x) for x in (feature.get("edges") or edges or [])]
    if feature.get("kind", "numeric") == "numeric" and len(edges) == n + 1 and all(map(math.isfinite, edges[1:-1])):
        return histogram_svg(edges, reference[:n], current[:n])
    names = bins[:n] if bins else [str(i) for i in range(n)]
    return category_bars(names, reference[:n], current[:n], numeric=feature.get("kind", "numeric") == "numeric")


# The per-feature histograms are written as SVG here rather than drawn by matplotlib: a matplotlib figure
# costs ~50 ms to save, so a 1,000-column table's report would take most of a minute; these take well
# under a millisecond each. matplotlib's own tick locator still chooses the axis ticks.
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 320, 132, 10, 310, 6, 110
MAX_CATEGORIES = 12


def histogram_svg(edges: list[float], reference: list[float], current: list[float]) -> str:
    """Density (share / bin width) per bin at the bins' true widths, so the reference's shape shows; the
    open-ended outer bins, when far wider than the others (a long tail), are drawn clipped."""
    from matplotlib.ticker import MaxNLocator
    infinite = (not math.isfinite(edges[0]), not math.isfinite(edges[-1]))
    if any(infinite):                # an infinite outer edge: the bin drawn as wide as its neighbour
        inner = [b - a for a, b in zip(edges[1:-1], edges[2:-1])] or [1.0]
        edges = [edges[1] - inner[0] if infinite[0] else edges[0], *edges[1:-1],
                 edges[-2] + inner[-1] if infinite[1] else edges[-1]]
    widths = [b - a for a, b in zip(edges, edges[1:])]
    left, right = edges[0], edges[-1]
    if right <= left:                                    # one value (a constant column): one bar around it
        pad = abs(left) * 0.05 or 0.5
        left, right, widths = left - pad, right + pad, [2 * pad]
        drawn = [(left, right)]
    else:
        inner = sorted(w for w in widths[1:-1] if w > 0) or sorted(w for w in widths if w > 0)
        cap = max(4 * inner[len(inner) // 2], inner[-1]) if len(widths) > 2 else math.inf
        left = max(left, edges[1] - cap) if len(widths) > 1 else left
        right = min(right, edges[-2] + cap) if len(widths) > 1 else right
        drawn = [(max(a, left), min(b, right)) for a, b in zip(edges, edges[1:])]
    ref_density = [s / w if w > 0 else 0.0 for s, w in zip(reference, widths)]
    cur_density = [s / w if w > 0 else 0.0 for s, w in zip(current, widths)]
    top = max(max(ref_density), max(cur_density)) * 1.08 or 1.0

    def x(v: float) -> float:
        return LEFT + (v - left) / (right - left) * (RIGHT - LEFT)

    def y(d: float) -> float:
        return BOTTOM - d / top * (BOTTOM - TOP)

    parts = [f'<svg class="hist" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" '
             f'font-size="10" role="img">']
    last = len(drawn) - 1
    for i, ((a, b), r, c) in enumerate(zip(drawn, reference, current)):
        lo = "−∞" if i == 0 and len(drawn) > 1 else tick_label(edges[i])
        hi = "+∞" if i == last and len(drawn) > 1 else tick_label(edges[min(i + 1, len(edges) - 1)])
        clipped = (i == 0 and (a > edges[0] or infinite[0])) or (i == last and (b < edges[-1] or infinite[1]))
        tip = html.escape(f"[{lo}, {hi}): reference {100 * r:.1f}%, current {100 * c:.1f}%"
                          + (" (drawn clipped: a wide open-ended bin)" if clipped else ""))
        for density, css in ((ref_density[i], "ref"), (cur_density[i], "cur")):
            top_y = y(density)
            parts.append(f'<rect class="{css}{" clip" if clipped else ""}" x="{x(a):.1f}" y="{top_y:.1f}" '
                         f'width="{max(x(b) - x(a), 0.6):.1f}" height="{BOTTOM - top_y:.1f}">'
                         f'<title>{tip}</title></rect>')
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}"/>')
    for tick in MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10], min_n_ticks=3).tick_values(left, right):
        if left <= tick <= right:
            parts.append(f'<line class="axis" x1="{x(tick):.1f}" y1="{BOTTOM}" x2="{x(tick):.1f}" y2="{BOTTOM + 3}"/>'
                         f'<text x="{x(tick):.1f}" y="{BOTTOM + 14}" text-anchor="middle">'
                         f'{html.escape(tick_label(tick))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def category_bars(names: list[str], reference: list[float], current: list[float], *, numeric: bool = False) -> str:
    """Horizontal bars, one category a row (HTML, so a long name is cut with its full text as a tooltip and
    names never overlap): the categories with the largest share on either side, the rest summed up."""
    order = sorted(range(len(names)), key=lambda i: -max(reference[i], current[i]))
    capped = len(names) > MAX_CATEGORIES + 1 and not numeric
    shown = sorted(order[:MAX_CATEGORIES]) if capped else list(range(len(names)))
    # a numeric feature without its edges: its bins are named by their lower edge
    rows = [(f"≥ {names[i]}" if numeric else names[i], names[i], reference[i], current[i]) for i in shown]
    rest = [i for i in range(len(names)) if i not in set(shown)]
    if rest:
        rows.append((f"{len(rest)} more", f"{len(rest)} more categories", sum(reference[i] for i in rest),
                     sum(current[i] for i in rest)))
    scale = max(max(r, c) for *_, r, c in rows) or 1.0
    out = []
    for label, name, r, c in rows:
        out.append(f'<div class="hb"><span class="hn" title="{html.escape(name)}">{html.escape(short(label, 24))}'
                   f'</span><span class="hv"><i class="r" style="width:{100 * r / scale:.1f}%"></i>'
                   f'<i class="c" style="width:{100 * c / scale:.1f}%"></i></span>'
                   f'<span class="hp">{100 * r:.1f}% → {100 * c:.1f}%</span></div>')
    return f'<div class="hbars">{"".join(out)}</div>'


def tick_label(value: float) -> str:
    """A short axis label: 12.5k, 3.2M, 0.25, 1.2e-05."""
    number = abs(value)
    if number >= 1e6:
        return f"{value / 1e6:.3g}M"
    if number >= 1e4:
        return f"{value / 1e3:.3g}k"
    if number and number < 1e-3:
        return f"{value:.1e}"
    return f"{value:.4g}"


def baseline_line(ax, x: list, values: list[float], colour, label: str) -> None:
    """A holdout baseline as a level line across the whole plot: carried over the windows without one (the
    model's holdout does not change), and drawn even when only one window has it (a one-point line is
    invisible)."""
    known = [v for v in values if math.isfinite(v)]
    if not known or not x:
        return
    filled, last = [], known[0]
    for v in values:
        last = v if math.isfinite(v) else last
        filled.append(last)
    if len(set(filled)) == 1:
        ax.axhline(filled[0], color=colour, linestyle=":", linewidth=1.4, label=label)
    else:
        ax.plot(x, filled, color=colour, linestyle=":", drawstyle="steps-post", linewidth=1.4, label=label)


def shares_of(counts) -> list[float]:
    values = [as_float(c) for c in counts or []]
    values = [v if math.isfinite(v) else 0.0 for v in values]
    total = sum(values)
    return [v / total for v in values] if total > 0 else [0.0] * len(values)


def finite_points(x: list, values: list[float]) -> tuple[list, list[float]]:
    """The points that have a value: a line then joins the windows around a missing one."""
    kept = [(a, v) for a, v in zip(x, values) if math.isfinite(v)]
    return [a for a, _ in kept], [v for _, v in kept]
