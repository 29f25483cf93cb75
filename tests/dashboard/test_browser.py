"""The dashboard in a real browser: Debian's chromium driven by Playwright. The page shows a real run of the demo
(its status snapshot and delivery timeline, tests/dashboard/data), the timeline grows without a reload when an event
arrives, an override button changes the rollout, and a wrong key is refused. Each state is saved as a screenshot
(the `screenshots` fixture's folder) for a person to look at."""
from __future__ import annotations

import pytest

from emulator.timeline import Delivery, Timeline
from lifecycle.core.rollout_machine import Rollout
from mlops.dashboard.source import View, stack_source
from tests.conftest import wait_until
from tests.dashboard.conftest import Source, canary_platform, demo_home, demo_status

pytestmark = pytest.mark.slow      # a browser process per session, seconds per test

WIDE, NARROW = {"width": 1280, "height": 900}, {"width": 420, "height": 900}


@pytest.fixture
def page_of(browser):
    """page_of(dashboard, viewport=WIDE, key=None): a new page, logged in with the dashboard's key (or `key`)."""
    contexts = []

    def open_page(dashboard, viewport=WIDE, key: str | None = None):
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.errors = errors
        page.response = page.goto(f"{dashboard.url}/?key={key or dashboard.key}")
        return page
    yield open_page
    for context in contexts:
        context.close()


def fits(page) -> bool:
    """Nothing wider than the window: tables and the graph scroll inside their own boxes."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_the_page_shows_the_demo_s_run(serve, page_of, screenshots, tmp_path):
    home = demo_home(tmp_path / "preprod")
    dashboard = serve(stack_source(home), home=home)
    status = demo_status()
    names = [m["model_name"] for m in status["app_models"]]
    page = page_of(dashboard)
    page.wait_for_selector("[data-testid=timeline-row]")
    page.wait_for_selector("[data-testid=lineage-node]")
    assert page.url == f"{dashboard.url}/"                                 # the key left the address bar
    assert page.get_by_test_id("model-tab").all_inner_texts() == [f"{n} {m['task']}" for n, m in
                                                                  zip(names, status["app_models"])]
    first = status["app_models"][0]
    assert first["model_name"] in page.get_by_test_id("model-title").inner_text()
    assert "snapshot" in page.get_by_test_id("snapshot-note").inner_text()
    versions = page.get_by_test_id("version-row")
    assert versions.count() == len(first["models"])
    nodes = page.get_by_test_id("lineage-node")
    for v in first["models"]:
        assert nodes.filter(has_text=f"v{v['version']}").count() >= 1
    for e in first["endpoints"]:
        for d in e["deployments"]:
            if d["traffic"]:
                segment = page.locator(f"[data-testid=traffic-segment][data-deployment='{d['name']}']")
                assert segment.inner_text() == f"{d['name']} {d['traffic']}%"
    if first["rollout"]:
        assert page.get_by_test_id("rollout-phase").inner_text() == first["rollout"]["phase"]
        for action in ("pause", "resume", "promote", "rollback"):      # read-only: the stack has stopped
            assert page.get_by_test_id(f"rollout-{action}").is_disabled()
    timeline = [line for line in home.timeline.read_text().splitlines() if '"source":"timer"' not in line]
    assert page.get_by_test_id("timeline-row").count() == min(len(timeline), 300)
    page.screenshot(path=screenshots / "demo-preprod-1280.png", full_page=True)

    page.get_by_test_id("model-tab").nth(1).click()
    assert names[1] in page.get_by_test_id("model-title").inner_text()
    page.screenshot(path=screenshots / "demo-preprod-second-model-1280.png", full_page=True)
    assert page.errors == []

    narrow = page_of(dashboard, NARROW)
    narrow.wait_for_selector("[data-testid=timeline-row]")
    assert fits(narrow)
    narrow.screenshot(path=screenshots / "demo-preprod-420.png", full_page=True)


def test_production_shows_the_promotions_and_the_registry_lineage(serve, page_of, screenshots, tmp_path):
    home = demo_home(tmp_path / "prod", "prod")
    dashboard = serve(stack_source(home), home=home)
    page = page_of(dashboard)
    page.wait_for_selector("[data-testid=promotion-row]")
    promotions = demo_status("prod")["app_models"][0]["promotions"]
    assert page.get_by_test_id("promotion-row").count() == len(promotions)
    page.screenshot(path=screenshots / "demo-prod-1280.png", full_page=True)
    assert page.errors == []


def test_the_timeline_updates_when_an_event_arrives_and_filters(serve, page_of, screenshots, tmp_path):
    home = demo_home(tmp_path / "preprod")
    dashboard = serve(stack_source(home), home=home)
    page = page_of(dashboard)
    rows = page.get_by_test_id("timeline-row")
    page.wait_for_selector("[data-testid=timeline-row]")
    before = rows.count()
    Timeline(home.timeline).record(Delivery("dashboard-test-1", "MLOps.ModelPromoted", "models/tabular-classifier:9",
                                            "on_model_promoted", 1, "failed", detail="HTTP 500 from the function",
                                            duration_ms=12.5))
    arrived = page.locator("[data-testid=timeline-row][data-event-id='dashboard-test-1']")
    arrived.wait_for(timeout=10_000)                                    # no reload: the stream told the page
    assert rows.count() == before + 1 and rows.first.get_attribute("data-event-id") == "dashboard-test-1"
    assert "HTTP 500 from the function" in arrived.inner_text()
    page.screenshot(path=screenshots / "timeline-event-arrived-1280.png", full_page=False)

    page.get_by_test_id("filter-outcome").select_option("failed")
    wait_until(lambda: rows.count() == 1, what="only the failed delivery")
    page.get_by_test_id("filter-outcome").select_option("")
    page.get_by_test_id("filter-function").select_option("on_data_arrived")
    wait_until(lambda: 0 < rows.count() < before and all(
        "on_data_arrived" in text for text in rows.all_inner_texts()), what="only on_data_arrived's deliveries")
    page.get_by_test_id("filter-function").select_option("")
    page.get_by_test_id("filter-ticks").check()
    wait_until(lambda: rows.count() > before + 1, what="the timer ticks")
    assert "timer" in " ".join(rows.all_inner_texts())
    page.get_by_test_id("timeline").screenshot(path=screenshots / "timeline-with-ticks.png")


def test_an_override_button_changes_the_rollout(serve, page_of, screenshots):
    p = canary_platform()
    endpoint = p.policies.model.endpoint
    dashboard = serve(Source(View(platform=p, started_at="2026-12-01T01:00:00Z")))
    page = page_of(dashboard)
    page.wait_for_selector("[data-testid=rollout-phase]")
    assert page.get_by_test_id("rollout-phase").inner_text() == "canary"
    assert page.get_by_test_id("source").inner_text() == "live stack"
    assert page.get_by_test_id("rollout-resume").is_disabled() and page.get_by_test_id("rollout-pause").is_enabled()
    assert page.get_by_test_id("job-approve").count() == 1            # the held job
    page.wait_for_selector("[data-testid=drift-chart] svg")
    page.screenshot(path=screenshots / "rollout-canary-1280.png", full_page=True)

    page.get_by_test_id("rollout-pause").click()
    page.get_by_test_id("rollout-paused").wait_for()
    assert p.state.get(Rollout, endpoint).paused
    assert "paused" in page.get_by_test_id("action-result").inner_text()
    assert page.get_by_test_id("rollout-resume").is_enabled()
    page.screenshot(path=screenshots / "rollout-paused-1280.png", full_page=False)

    page.get_by_test_id("rollout-rollback").click()
    wait_until(lambda: page.get_by_test_id("rollout-phase").inner_text() == "rolled_back", what="the rollback shown")
    assert p.state.get(Rollout, endpoint).phase == "rolled_back"
    assert page.get_by_test_id("rollout-promote").is_disabled()
    page.screenshot(path=screenshots / "rollout-rolled-back-1280.png", full_page=False)

    narrow = page_of(dashboard, NARROW)
    narrow.wait_for_selector("[data-testid=rollout-phase]")
    assert fits(narrow)
    narrow.screenshot(path=screenshots / "rollout-420.png", full_page=True)
    assert page.errors == [] and narrow.errors == []


def test_a_wrong_key_is_refused(serve, page_of, screenshots):
    dashboard = serve(Source(View(platform=canary_platform())))
    page = page_of(dashboard, key="not-the-key")
    assert page.response.status == 401
    assert "wrong key" in page.inner_text("body")
    assert page.context.cookies() == []
    page.screenshot(path=screenshots / "wrong-key.png")


def test_a_decision_nobody_was_notified_of_is_listed(serve, page_of, screenshots):
    status = demo_status()
    status["notification_dead_letters"] = [{
        "event_id": "e1", "event_type": "MLOps.ModelRejected", "summary": "The model of job train-x was rejected.",
        "webhook": "json https://ops.example.org/mlops-events", "attempts": 4, "last_status": 503,
        "last_error": "HTTP 503", "dead_lettered_at": "2026-12-01T02:00:00Z"}]
    page = page_of(serve(Source(View(snapshot=status, written_at="2026-12-01T02:05:00Z"))))
    row = page.get_by_test_id("not-notified-row")
    row.wait_for()
    assert "MLOps.ModelRejected" in row.inner_text() and "HTTP 503, 4 attempt(s)" in row.inner_text()
    assert "ops.example.org/mlops-events" in row.inner_text()
    page.get_by_test_id("not-notified").screenshot(path=screenshots / "not-notified-1280.png")
    assert page.errors == []


def compute_status() -> dict:
    """The demo's status with the first model's training compute (tests/dashboard/data/compute.json), its training
    jobs named as the demo's so that the jobs table shows their figures."""
    import json

    from tests.dashboard.conftest import DATA
    status = demo_status()
    model = status["app_models"][0]
    compute = json.loads((DATA / "compute.json").read_text())
    trained = [j["name"] for j in model["jobs"]]
    compute["jobs"][0]["name"], compute["jobs"][2]["name"] = trained[0], trained[-1]
    model["compute"] = compute
    return status


def test_the_compute_panel_shows_each_job_s_figures_and_the_advice(serve, page_of, screenshots):
    status = compute_status()
    trained = status["app_models"][0]["jobs"]
    page = page_of(serve(Source(View(snapshot=status, written_at="2026-12-01T13:00:00Z"))))
    panel = page.get_by_test_id("compute")
    page.get_by_test_id("compute-job").first.wait_for()
    assert panel.is_visible()
    assert page.get_by_test_id("compute-totals").inner_text() == (
        "3 jobs over 1 day: 5.9 job-minutes, 0.029 USD; at this rate 0.87 USD a month (177 job-minutes) at 0.293 USD "
        "per node-hour for Standard_DS3_v2")
    assert page.get_by_test_id("compute-nodes").inner_text().startswith(
        "nodes of cpu-cluster over 1 day: 6 active, 10 idle node-minutes; idle 0.049 USD")
    figures = page.get_by_test_id("compute-figures").all_inner_texts()
    assert figures[0] == "1m06s · queue 4s · CPU 25% · memory 3% (240 MiB) · 0.0054 USD"
    assert figures[2] == "4m30s · queue 2m00s · CPU 92% · memory 4% (288 MiB) · 0.022 USD slowed ×4.1 (usual 1m06s)"
    advice = page.get_by_test_id("compute-advice").locator("li").all_inner_texts()
    assert advice[0] == "keep max nodes 2: at most 1 job ran at once; queue time is short (p90 4 s)"
    assert advice[3].startswith("change VM size Standard_DS3_v2 → Standard_F8s_v2: training used 92% of the CPU")
    # the slowed job's bar is the longest and red; the usual one's a quarter of it
    bars = page.locator("[data-testid=compute-job] .compute-bar i")
    widths = [bars.nth(i).evaluate("e => e.getBoundingClientRect().width") for i in range(3)]
    assert widths[2] > 3.9 * widths[0] and "slowed" in (bars.nth(2).get_attribute("class") or "")
    # the jobs table: each training job's duration under its name (newest first there)
    row = page.get_by_test_id("job-row").filter(has_text=trained[-1]["name"])
    assert row.get_by_test_id("job-compute").inner_text() == (
        "took 4m30s · queue 2m00s · CPU 92% · 288 MiB · 0.022 USD slowed ×4.1 (usual 1m06s)")
    assert page.get_by_test_id("job-compute").count() == 2             # the jobs the compute view has figures of
    panel.screenshot(path=screenshots / "compute-1280.png")
    assert page.errors == []

    narrow = page_of(serve(Source(View(snapshot=status, written_at="2026-12-01T13:00:00Z"))), NARROW)
    narrow.get_by_test_id("compute-job").first.wait_for()
    assert fits(narrow)
    job = narrow.get_by_test_id("compute-job").nth(2)
    box, viewport = job.bounding_box(), narrow.viewport_size
    assert box and viewport and box["x"] + box["width"] <= viewport["width"]      # folds rather than overflows
    assert "4m30s" in job.inner_text()
    narrow.get_by_test_id("compute").screenshot(path=screenshots / "compute-420.png")
    assert narrow.errors == []


def test_a_model_without_compute_has_no_panel_and_nulls_show_as_dashes(serve, page_of):
    status = compute_status()
    compute = status["app_models"][0]["compute"]
    for job in compute["jobs"]:
        job.update(duration_seconds=None, queue_seconds=None, cpu_percent=None, memory_percent=None, cost=None,
                   peak_memory_bytes=None, slowed=None)
    compute.update(nodes=None, advice=[], rate_per_node_hour=None)
    page = page_of(serve(Source(View(snapshot=status))))
    page.get_by_test_id("compute-job").first.wait_for()
    assert page.get_by_test_id("compute-figures").first.inner_text() == "- · queue - · CPU - · memory - (-) · -"
    assert page.get_by_test_id("compute-nodes").count() == 0 and page.get_by_test_id("compute-advice").count() == 0
    assert "no price known for Standard_DS3_v2" in page.get_by_test_id("compute-totals").inner_text()
    page.get_by_test_id("model-tab").nth(1).click()                    # the second model: no compute collected
    page.get_by_test_id("model-title").filter(has_text=status["app_models"][1]["model_name"]).wait_for()
    assert page.get_by_test_id("compute").is_hidden()
    assert page.errors == []
