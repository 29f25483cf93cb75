"""The HTML and number formatting of the monitoring report: escaped text unless it is Markup, tables whose
numeric cells align right, and numbers, shares and percentages written the same way in every section."""
from __future__ import annotations

import html
import math
import re


class Markup(str):
    """Text that is already HTML: inserted as it is. Every other str is escaped."""


def e(value) -> str:
    return value if isinstance(value, Markup) else html.escape(str(value))


def as_float(value) -> float:
    try:
        return float(value) if value is not None and not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        return math.nan


def num(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    number = as_float(value)
    if math.isnan(number) and not isinstance(value, float):
        return str(value)
    if not math.isfinite(number):
        return "–"
    return f"{number:.2e}" if number and abs(number) < 1e-3 else f"{number:.3g}"


def pct(value) -> str:
    number = as_float(value)
    return f"{100 * number:.1f}%" if math.isfinite(number) else "–"


def pct_points(value) -> str:
    number = as_float(value)
    return f"{number:.1f}%" if math.isfinite(number) else "–"


def short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def mpl_text(text: str) -> str:
    """Literal text for matplotlib: a `$` pair would otherwise start mathtext."""
    return text.replace("$", r"\$")


def flag(on, word: str) -> Markup:
    return Markup(f'<span class="bad">{e(word)}</span>') if on else Markup("–")


def marked(text: str, bad, *, ok: bool = False, tag: str = "span", css: str = "") -> Markup:
    css = "bad" if bad else ("ok" if ok else css)
    return Markup(f'<{tag} class="{css}">{e(text)}</{tag}>' if css else f"<{tag}>{e(text)}</{tag}>")


def none_note(text: str) -> Markup:
    return Markup(f'<p class="none">{e(text)}</p>')


def bullet_list(items) -> str:
    return f"<ul>{''.join(f'<li>{e(i)}</li>' for i in items)}</ul>" if items else ""


def section(heading: str, body: str) -> str:
    """A section of the page, its anchor made from its heading (the table of contents links to it)."""
    return f'<section id="{anchor(heading)}"><h2>{e(heading)}</h2>\n{body}</section>'


def anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-") or "section"


def warning(text: str) -> Markup:
    return Markup(f'<p class="warn">{e(text)}</p>')


def table(columns: list[str], rows: list[list], *, head: bool = True) -> str:
    def cells(row: list) -> str:
        return "".join(c if isinstance(c, Markup) and c.startswith("<th>") else
                       f'<td{" class=n" if is_numeric(c) else ""}>{e(c)}</td>' for c in row)

    top = f"<tr>{''.join(f'<th>{e(c)}</th>' for c in columns)}</tr>" if head else ""
    return f"<table>{top}{''.join(f'<tr>{cells(r)}</tr>' for r in rows)}</table>"


def is_numeric(cell) -> bool:
    return not isinstance(cell, Markup) and bool(re.fullmatch(r"[-+]?[\d,.]+(e[-+]?\d+)?%?", str(cell)))
