"""The simulation's HTML page in a real browser (Debian's chromium driven by Playwright, as the dashboard's tests
do): on a 420-pixel window the chart shows and nothing is wider than the window (the table scrolls inside its own
box). The page is saved as a screenshot beside the dashboard's (test-output/screenshots, or under
$MLOPS_TEST_OUTPUT)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops.simulation.report_html import page
from tests.simulation.test_report import sample_result

pytestmark = pytest.mark.slow      # a browser process, about a second

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def browser():
    """Per module, as tests/dashboard/conftest.py's: Playwright's sync API keeps an event loop running in the
    main thread while it is open."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


# elements wider than the window, other than those inside a box that scrolls sideways
TOO_WIDE = """() => [...document.body.querySelectorAll('*')].filter(el => {
  for (let p = el.parentElement; p; p = p.parentElement)
    if (getComputedStyle(p).overflowX === 'auto') return false;
  const r = el.getBoundingClientRect();
  return r.width > 0 && (r.left < -1 || r.right > window.innerWidth + 1);
}).map(el => el.tagName + '.' + (el.getAttribute('class') || ''))"""


def test_the_page_reads_on_a_narrow_window(browser, tmp_path):
    result = sample_result()
    path = tmp_path / "simulation.html"
    path.write_text(page(result), encoding="utf-8")
    context = browser.new_context(viewport={"width": 420, "height": 900})
    try:
        view = context.new_page()
        errors: list[str] = []
        view.on("pageerror", lambda error: errors.append(str(error)))
        view.goto(path.as_uri())
        chart = view.get_by_test_id("metric-chart")
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box is not None and 300 < box["width"] <= 420 and box["height"] > 150
        assert view.locator("[data-testid=metric-chart] polyline").count() == len(result.outcomes)
        assert view.get_by_test_id("decision-strips").is_visible()
        assert result.recommendation is not None
        assert result.recommendation.policy in view.get_by_test_id("recommendation").inner_text()
        assert view.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        assert view.evaluate(TOO_WIDE) == []
        assert errors == []
        folder = Path(os.environ.get("MLOPS_TEST_OUTPUT") or ROOT / "test-output") / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        view.screenshot(path=folder / "simulation-420.png", full_page=True)
    finally:
        context.close()
