"""A simulation's result as one self-contained HTML page: no script, no external file; the charts are SVG
written here (like the monitoring report's histograms, monitoring/report_plots.py), scaled to the window by
their viewBox so that the page reads on a phone. Every piece of text from the result (a policy's name comes
from a user's file) is HTML-escaped.

The page: a header (the history, the recommendation and why); the metric over time, one line per policy, on
the known drifts (a gradual one shaded, a sudden one a dashed line); under it one strip per policy with the
lifecycle's decisions at their time; the table of numbers; the settings each policy set."""
from __future__ import annotations

import math
from datetime import date, timedelta

from mlops.simulation.outcome import DriftPoint, Marker, PolicyOutcome, SimulationResult
from mlops.simulation.report_text import (
    alarms_text,
    day_date,
    drift_text,
    drifts_known,
    metric_text,
    recovery_text,
    seconds_text,
)
from mlops.simulation.scoring import ROLLING_DAYS, rolling_means
from monitoring.report_format import Markup, e, table
from monitoring.report_plots import tick_label

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
DASHES = ("", "6 3", "2 2")      # past ten policies, the colours come round again dashed
WIDTH, LEFT, RIGHT = 600, 46, 10
CHART_HEIGHT, TOP, BOTTOM = 250, 10, 36
ROW = 32
MARKERS = {"trained": ("#4a6fa5", "trained"), "promoted": ("#2e7d32", "promoted"),
           "rolled_back": ("#c62828", "rolled back"), "rejected": ("#888888", "rejected"),
           "alert": ("#e69500", "alert")}

CSS = """body{font:15px/1.45 system-ui,sans-serif;color:#222;max-width:1000px;margin:0 auto 2em;padding:0 .8em}
h1{font-size:1.4em;margin:.6em 0 .2em;overflow-wrap:anywhere}h2{font-size:1.15em;border-bottom:1px solid #ccc;
padding-bottom:.2em;margin-top:1.4em}h3{font-size:1em;margin:.8em 0 .2em;overflow-wrap:anywhere}
.meta{color:#555;margin:.2em 0}.rec{background:#eaf5ea;border-left:4px solid #2e7d32;padding:.5em .8em;
overflow-wrap:anywhere}.rec.none{background:#fff4e5;border-color:#e69500}
svg{display:block;width:100%;height:auto}svg text{fill:#333}.grid{stroke:#e4e4e4}.axis{stroke:#999}
.keys{display:flex;flex-wrap:wrap;gap:.2em 1em;font-size:13px;margin:.3em 0 .8em;padding:0;list-style:none}
.keys li{overflow-wrap:anywhere}.keys i{display:inline-block;width:1.4em;height:.3em;vertical-align:middle;
margin-right:.35em;border-radius:2px}.note{color:#555;font-size:13px}
.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;margin:.5em 0;font-size:14px}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}th{background:#f4f4f4}
td.n{text-align:right;font-variant-numeric:tabular-nums}details{margin:.5em 0}summary{cursor:pointer}
.keys svg{display:inline-block;width:1.2em;height:1.2em;
vertical-align:middle;margin-right:.3em}"""


def page(result: SimulationResult) -> str:
    """The whole page, to be written as utf-8."""
    title = f"Retraining policies on {result.history}"
    body = [_header(result, title), _chart_section(result), _numbers(result), _settings(result)]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(title)}</title>'
            f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


# ---- sections ----------------------------------------------------------------------------------------------

def _header(result: SimulationResult, title: str) -> str:
    warmup = f" after {result.warmup_days} days of warm-up" if result.warmup_days else ""
    meta = (f"{result.task}, scored by {result.metric}: {result.days} days from {result.start}{warmup}; "
            f"seed {result.seed}")
    parts = [f"<h1>{e(title)}</h1>", f'<p class="meta">{e(meta)}</p>']
    rec = result.recommendation
    if rec:
        parts.append(f'<p class="rec" data-testid="recommendation"><b>Recommended: {e(rec.policy)}</b>. '
                     f"{e(rec.reason)}</p>")
    else:
        parts.append('<p class="rec none" data-testid="recommendation">No recommendation: no policy had labelled '
                     "days to score.</p>")
    if result.drifts:
        parts.append("<p>Known drifts:</p><ul>" + "".join(f"<li>{e(drift_text(d, result.start))}</li>"
                                                       for d in result.drifts) + "</ul>")
    elif drifts_known(result):
        parts.append('<p class="note">No known drift in this history.</p>')
    else:
        parts.append('<p class="note">The drifts of this data are not known: recovery and alarms are not '
                     "judged.</p>")
    parts += [f'<p class="note">{e(note)}</p>' for note in result.notes]
    return "\n".join(parts)


def _chart_section(result: SimulationResult) -> str:
    lines = [(o, rolling_means(o.run)) for o in result.outcomes]
    keys = "".join(f'<li><i style="background:{_colour(i)}"></i>{e(o.run.name)}</li>'
                   for i, (o, _) in enumerate(lines))
    marker_keys = "".join(f'<li><svg viewBox="0 0 16 16" aria-hidden="true">{_shape(kind, 8, 8)}</svg>{e(label)}</li>'
                          for kind, (_, label) in MARKERS.items())
    note = (f"Each line: the mean {result.metric} of the last {ROLLING_DAYS} days with labels, the level the "
            "recovery is judged on. Known drifts: a gradual one shaded, a sudden one dashed.")
    return (f'<h2>{e(result.metric.capitalize())} over time</h2><p class="note">{e(note)}</p>'
            + _metric_svg(result, lines) + f'<ul class="keys" aria-label="policies">{keys}</ul>'
            + "<h2>What each policy's lifecycle did</h2>" + _strips_svg(result)
            + f'<ul class="keys" aria-label="markers">{marker_keys}</ul>')


def _numbers(result: SimulationResult) -> str:
    columns = ["policy", f"mean {result.metric}", "last 7 days", "trainings", "failed", "registered", "rejected",
               "promoted", "rolled back", "alerts", "recovery per drift", "false alarms / missed drifts",
               "training compute (s)", "monitoring compute (s)", "simulated in (s)"]
    rows = []
    for o in result.outcomes:
        r = o.run
        rows.append([r.name, metric_text(o.mean_metric), metric_text(o.final_metric), str(r.trainings),
                     str(r.failed_trainings), str(r.registered), str(r.rejected), str(r.promoted), str(r.rolled_back),
                     str(r.alerts), recovery_text(o), alarms_text(o), seconds_text(r.training_seconds),
                     seconds_text(r.monitoring_seconds), seconds_text(r.wall_seconds)])
    window = next((o.alarms.window_days for o in result.outcomes if o.alarms), None)
    note = ("Recovery: days from a drift's start until the 3-day mean is back within the tolerance of the level "
            "before it (never: not before the next drift or the end)."
            + (f" An alert up to {window} days after a drift's end detects it; any other is a false alarm."
               if window is not None else ""))
    return (f'<h2>The numbers</h2><div class="scroll">{table(columns, rows)}</div>'
            f'<p class="note">{e(note)}</p>')


def _settings(result: SimulationResult) -> str:
    parts = []
    for o in result.outcomes:
        settings = o.run.settings
        body = (table(["setting", "value"], [[Markup(f"<th>{e(k)}</th>"), v] for k, v in settings.items()])
                if settings else '<p class="note">No setting: the app\'s defaults.</p>')
        parts.append(f"<h3>{e(o.run.name)}</h3><p>{e(o.run.description)}</p><div class=\"scroll\">{body}</div>")
    return ("<h2>Settings</h2><details><summary>The app settings each policy set</summary>" + "".join(parts)
            + "</details>")


# ---- the charts --------------------------------------------------------------------------------------------

def _metric_svg(result: SimulationResult, lines: list[tuple[PolicyOutcome, list[tuple[int, float]]]]) -> str:
    values = [v for _, points in lines for _, v in points]
    label = f"{result.metric} over {result.days} days, one line per policy"
    if not values:
        return f'<p class="note" role="img" aria-label="{e(label)}">No labelled day to plot.</p>'
    top_value = max(values)
    low = max(min(values), top_value - 1.0)   # an r2 far below zero would flatten every other line
    pad = (top_value - low) * 0.08 or 0.05
    low, high = low - pad, top_value + pad
    bottom = CHART_HEIGHT - BOTTOM

    def y(v: float) -> float:
        return bottom - (min(max(v, low), high) - low) / (high - low) * (bottom - TOP)

    x = _x(result.days)
    parts = [_svg_open(CHART_HEIGHT, label, "metric-chart"), _drift_marks(result.drifts, x, TOP, bottom)]
    for tick in _ticks(low, high):
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y(tick):.1f}" x2="{WIDTH - RIGHT}" y2="{y(tick):.1f}"/>'
                     f'<text x="{LEFT - 4}" y="{y(tick) + 4:.1f}" text-anchor="end">{e(tick_label(tick))}</text>')
    parts.append(_day_axis(result, x, bottom))
    for i, (o, points) in enumerate(lines):
        if not points:
            continue
        dash = DASHES[(i // len(COLOURS)) % len(DASHES)]
        coords = " ".join(f"{x(day + 0.5):.1f},{y(v):.1f}" for day, v in points)
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline class="line" data-policy="{e(o.run.name)}" points="{coords}" fill="none" '
                     f'stroke="{_colour(i)}" stroke-width="1.6"{dashed}>'
                     f"<title>{e(o.run.name)}: mean {e(metric_text(o.mean_metric))}</title></polyline>")
        if len(points) == 1:
            parts.append(f'<circle cx="{x(points[0][0] + 0.5):.1f}" cy="{y(points[0][1]):.1f}" r="2.5" '
                         f'fill="{_colour(i)}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _strips_svg(result: SimulationResult) -> str:
    rows = len(result.outcomes)
    height = TOP + rows * ROW + BOTTOM
    bottom = TOP + rows * ROW
    x = _x(result.days)
    label = "the lifecycle's decisions per policy: trainings, promotions, rollbacks, rejections and alerts"
    parts = [_svg_open(height, label, "decision-strips"), _drift_marks(result.drifts, x, TOP, bottom)]
    for i, o in enumerate(result.outcomes):
        top = TOP + i * ROW
        mid = top + 22
        parts.append(f'<text x="{LEFT}" y="{top + 10}">{e(o.run.name)}</text>'
                     f'<line class="grid" x1="{LEFT}" y1="{mid}" x2="{WIDTH - RIGHT}" y2="{mid}"/>')
        # ticks first, so that a promotion or an alert on the same day is drawn over them
        for m in sorted(o.run.markers, key=lambda m: m.kind != "trained"):
            if m.kind in MARKERS and 0 <= m.day <= result.days:
                parts.append(_marker(m, x(m.day), mid, o.run.name, result.start))
    parts.append(_day_axis(result, x, bottom) + "</svg>")
    return "".join(parts)


def _marker(m: Marker, cx: float, cy: float, policy: str, start: str) -> str:
    when = day_date(start, math.floor(m.day))
    tip = f"{policy}: {MARKERS[m.kind][1]} on day {m.day:.1f}{f' ({when})' if when else ''}" + (
        f": {m.detail}" if m.detail else "")
    return f'<g class="marker {m.kind}"><title>{e(tip)}</title>{_shape(m.kind, cx, cy)}</g>'


def _shape(kind: str, cx: float, cy: float) -> str:
    """trained: a small tick; promoted: a green up-triangle; rolled back: a red down-triangle; rejected: a grey
    x; alert: an orange dot."""
    colour = MARKERS[kind][0]
    return {
        "trained": f'<line x1="{cx:.1f}" y1="{cy - 5}" x2="{cx:.1f}" y2="{cy + 5}" stroke="{colour}" '
                   f'stroke-width="1"/>',
        "promoted": f'<polygon points="{cx:.1f},{cy - 6} {cx - 5:.1f},{cy + 4} {cx + 5:.1f},{cy + 4}" '
                    f'fill="{colour}"/>',
        "rolled_back": f'<polygon points="{cx:.1f},{cy + 6} {cx - 5:.1f},{cy - 4} {cx + 5:.1f},{cy - 4}" '
                       f'fill="{colour}"/>',
        "rejected": f'<path d="M{cx - 4:.1f},{cy - 4}L{cx + 4:.1f},{cy + 4}M{cx - 4:.1f},{cy + 4}L{cx + 4:.1f},'
                    f'{cy - 4}" stroke="{colour}" stroke-width="1.8"/>',
        "alert": f'<circle cx="{cx:.1f}" cy="{cy}" r="3.5" fill="{colour}"/>',
    }[kind]


def _drift_marks(drifts: tuple[DriftPoint, ...], x, top: float, bottom: float) -> str:
    parts = []
    for d in drifts:
        tip = f"<title>{e(drift_text(d))}</title>"
        if d.ends > d.day + 1:
            parts.append(f'<rect class="drift gradual" x="{x(d.day):.1f}" y="{top}" width="{x(d.ends) - x(d.day):.1f}" '
                         f'height="{bottom - top}" fill="#f2d7d5" opacity="0.7">{tip}</rect>')
        else:
            parts.append(f'<line class="drift sudden" x1="{x(d.day):.1f}" y1="{top}" x2="{x(d.day):.1f}" '
                         f'y2="{bottom}" stroke="#c0392b" stroke-width="1.2" stroke-dasharray="4 3">{tip}</line>')
    return "".join(parts)


def _day_axis(result: SimulationResult, x, bottom: float) -> str:
    """Ticks in days since the first measured day, each with its date under it."""
    parts = [f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}"/>']
    step = next((s for s in (1, 2, 5, 7, 14, 28, 30, 60, 91, 182, 365) if result.days / s <= 6),
                max(1, result.days // 6))
    for day in range(0, result.days + 1, step):
        when = _short_date(result.start, day)
        parts.append(f'<line class="axis" x1="{x(day):.1f}" y1="{bottom}" x2="{x(day):.1f}" y2="{bottom + 4}"/>'
                     f'<text x="{x(day):.1f}" y="{bottom + 15}" text-anchor="middle">day {day}</text>'
                     + (f'<text x="{x(day):.1f}" y="{bottom + 28}" text-anchor="middle" fill="#777">{when}</text>'
                        if when else ""))
    return "".join(parts)


# ---- small pieces ------------------------------------------------------------------------------------------

def _svg_open(height: float, label: str, testid: str) -> str:
    return (f'<svg viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg" font-size="12" role="img" '
            f'aria-label="{e(label)}" data-testid="{testid}"><title>{e(label)}</title>')


def _x(days: int):
    span = max(days, 1)
    return lambda day: LEFT + day / span * (WIDTH - LEFT - RIGHT)


def _ticks(low: float, high: float) -> list[float]:
    from matplotlib.ticker import MaxNLocator  # the same ticks as the monitoring report's histograms
    return [t for t in MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high) if low <= t <= high]


def _colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


def _short_date(start: str, day: int) -> str:
    try:
        when = date.fromisoformat(start[:10]) + timedelta(days=day)
    except (TypeError, ValueError):
        return ""
    return f"{when.day} {when:%b}" + (f" {when:%Y}" if day == 0 else "")
