"""The real clickable tree in Chromium: click the red north star, then a red child; at 1600 × 1000 the
answer is beside the tree, in view after every action, and the red path is drawn on the tree."""

from __future__ import annotations

import time

import pytest
from conftest import ARTIFACTS

BOX = "[data-testid='stVegaLiteChart'] path[aria-label*='label: {}']"


def wait_for_heading(page, text: str, timeout: float = 20.0) -> float:
    start = time.perf_counter()
    page.get_by_role("heading", name=text).first.wait_for(timeout=timeout * 1000)
    return time.perf_counter() - start


@pytest.mark.flaky(reruns=2)  # a real browser on a shared 2-core machine
def test_click_north_star_then_red_child(page, app_url):
    page.goto(app_url)
    page.locator(BOX.format("ARR")).first.wait_for(timeout=60000)
    page.locator(BOX.format("ARR")).first.click()
    wait_for_heading(page, "ARR")
    page.screenshot(path=str(ARTIFACTS / "tree_north_star.png"), full_page=True)

    # New business ARR is red on the demo (planted win-rate and discount problems).
    box = page.locator(BOX.format("New business ARR")).first
    assert "status (against target): off target" in box.get_attribute("aria-label")
    box.click()
    wait_for_heading(page, "New business ARR")
    # The heading shows first; the segment section follows once the rerun reaches it.
    page.get_by_text("Split by").first.wait_for(timeout=30000)
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "Alex Romero (CRO)" in body
    assert "Split by" in body
    # The segment chart of the selected node is drawn (owner split first for deals).
    assert page.locator("[data-testid='stVegaLiteChart']").count() >= 3
    page.screenshot(path=str(ARTIFACTS / "tree_new_business_arr.png"), full_page=True)
    errors = page.locator("[data-testid='stException']").count()
    assert errors == 0


@pytest.mark.flaky(reruns=2)
def test_red_path_lists_every_cause_and_opens_one(page, app_url):
    """The product's promise in a real browser: follow the red path from the red ARR, see every
    planted problem with its owner, open one of the other causes and land on its panel."""
    page.goto(app_url)
    page.locator(BOX.format("ARR")).first.wait_for(timeout=60000)
    page.get_by_role("button", name="Follow the red path").click()
    page.get_by_text("Also off track").first.wait_for(timeout=30000)
    body = page.locator("[data-testid='stMain']").inner_text()
    for named in ("Dana Whitfield", "Paid Search leads", "SMB customers: Logo churn rate", "Mid-Market deals",
                  "Adoption — reports"):
        assert named in body, named
    page.screenshot(path=str(ARTIFACTS / "red_path_causes.png"), full_page=True)
    page.get_by_role("button", name="Open: Logo churn rate").click()
    wait_for_heading(page, "Logo churn rate", timeout=30)
    page.get_by_text("Split by").first.wait_for(timeout=30000)
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "Priya Nair (VP Customer Success)" in body and "SMB" in body
    assert page.locator("[data-testid='stException']").count() == 0


@pytest.mark.flaky(reruns=2)
def test_a_click_counts_after_an_open_button_chose_another_node(page, app_url):
    """The last action wins: a box the chart had selected before an "Open …" button moved the panel
    elsewhere still opens when clicked again (it used to send no change and do nothing)."""
    page.goto(app_url)
    page.locator(BOX.format("New business ARR")).first.wait_for(timeout=60000)
    page.locator(BOX.format("New business ARR")).first.click()
    wait_for_heading(page, "New business ARR")
    page.get_by_role("button", name="Follow the red path").click()
    page.get_by_role("button", name="Open: Logo churn rate").click()
    wait_for_heading(page, "Logo churn rate", timeout=30)
    page.locator(BOX.format("New business ARR")).first.click()
    wait_for_heading(page, "New business ARR", timeout=30)
    assert page.get_by_role("heading", name="Logo churn rate").count() == 0
    assert page.locator("[data-testid='stException']").count() == 0


PANEL_HEADING = """(name) => {
  const h = [...document.querySelectorAll('.st-key-answer h4')].find(e => e.innerText.trim() === name);
  const v = document.querySelector('.st-key-answer [data-testid="stMetricValue"]');
  if (!h || !v) return null;
  return [h.getBoundingClientRect().top, h.getBoundingClientRect().bottom, v.getBoundingClientRect().top,
          v.getBoundingClientRect().bottom, window.innerHeight];
}"""


def in_view(page, heading: str) -> list[float]:
    """Where the panel's heading and its value are, checked to be inside the viewport (no scrolling)."""
    box = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the scroll into view runs just after the rerun
        box = page.evaluate(PANEL_HEADING, heading)
        if box and 0 <= box[0] and box[3] <= box[4]:
            return box
        page.wait_for_timeout(200)
    raise AssertionError(f"{heading!r}: heading and value not in view: {box}")


@pytest.fixture
def wide(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    pg = context.new_page()
    yield pg
    context.close()


@pytest.mark.flaky(reruns=2)
def test_answer_beside_the_tree_in_view_after_load_click_and_red_path(wide, app_url):
    """1600 × 1000: the selected node's heading and value are in view on load and after a click on a
    box far down the tree; "Follow the red path" draws the path on the tree (its boxes marked in the
    chart, its links in red) and its first step is in view; an "Open" button shows that node in view."""
    page = wide
    page.goto(app_url)
    page.locator(BOX.format("Proposals sent")).first.wait_for(timeout=60000)
    wait_for_heading(page, "ARR")
    in_view(page, "ARR")
    tree = page.locator("[data-testid='stVegaLiteChart']").first
    panel = page.locator("[data-testid='stColumn']:has(.st-key-panel_pane)").first
    assert tree.bounding_box()["x"] + tree.bounding_box()["width"] <= panel.bounding_box()["x"]  # side by side

    page.mouse.move(500, 700)
    page.mouse.wheel(0, 500)  # down the tree, as a user reaching a lower box would
    box = page.locator(BOX.format("Proposals sent")).first
    box.scroll_into_view_if_needed()
    box.click()
    wait_for_heading(page, "Proposals sent", timeout=30)
    in_view(page, "Proposals sent")
    page.screenshot(path=str(ARTIFACTS / "glance_click_1600.png"))

    assert page.locator("g.layer_1_marks line").count() == 0  # no path drawn before it is asked for
    page.get_by_role("button", name="Follow the red path").click()
    page.get_by_text("Also off track").first.wait_for(timeout=30000)
    page.wait_for_function("document.querySelectorAll('g.layer_1_marks line').length > 0", timeout=30000)
    on_path = page.locator("[data-testid='stVegaLiteChart'] path[aria-label*='red path: on it']")
    labels = [on_path.nth(i).get_attribute("aria-label") for i in range(on_path.count())]
    assert any("label: ARR;" in a for a in labels) and len(labels) >= 3, labels
    assert page.locator("[data-testid='stVegaLiteChart'] path[aria-label*='red path: off it']").count() > 0
    red = page.locator("g.layer_1_marks line").first.get_attribute("stroke")
    assert red == "#c62828"
    first = page.locator(".st-key-red_path_box li").first
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        top = first.bounding_box()
        if top and 0 <= top["y"] and top["y"] + top["height"] <= 1000:
            break
        page.wait_for_timeout(200)
    else:
        raise AssertionError(f"the red path's first step is not in view: {top}")
    page.screenshot(path=str(ARTIFACTS / "glance_red_path_1600.png"))

    button = page.get_by_role("button", name="Open: Logo churn rate")
    button.scroll_into_view_if_needed()
    button.click()
    wait_for_heading(page, "Logo churn rate", timeout=30)
    in_view(page, "Logo churn rate")
    page.screenshot(path=str(ARTIFACTS / "glance_open_1600.png"))
    assert page.locator("[data-testid='stException']").count() == 0


@pytest.mark.flaky(reruns=2)
def test_the_arr_panel_draws_its_bridge(wide, app_url):
    """The north star's panel in Chromium: its exact formula, the share of its gap over its children, and the
    period's ARR bridge as a waterfall (start, five movements, end) — seven bars, every one named."""
    page = wide
    page.goto(app_url)
    page.locator(BOX.format("ARR")).first.wait_for(timeout=60000)
    wait_for_heading(page, "ARR")
    page.get_by_text("ARR bridge 2026-10").first.wait_for(timeout=30000)
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "Exact formula: arr = arr_start * nrr + arr_new + arr_reactivation" in body
    assert "from $155.18M at its start to $158.37M at its end" in body
    chart = page.locator("[data-testid='stVegaLiteChart']:has(path[aria-label*='step: ARR at end'])").first
    chart.scroll_into_view_if_needed()
    bars = chart.locator("path[aria-label*='step: ']")
    steps = {bars.nth(i).get_attribute("aria-label").split("step: ")[1].split(";")[0] for i in range(bars.count())}
    assert steps == {"ARR at start", "New", "Expansion", "Reactivation", "Contraction", "Churn", "ARR at end"}, steps
    page.screenshot(path=str(ARTIFACTS / "arr_bridge_panel.png"), full_page=True)
    chart.screenshot(path=str(ARTIFACTS / "arr_bridge_waterfall.png"))
    assert page.locator("[data-testid='stException']").count() == 0
    # the client's report of this view, from the sidebar
    page.get_by_role("button", name="Prepare the report").click()
    page.get_by_role("button", name="Report (HTML)").wait_for(timeout=60000)
    assert page.locator("[data-testid='stException']").count() == 0
    for name in ("Report (HTML)", "Report (PDF)", "Node values (CSV)", "Causes (CSV)"):  # labels shown, not cut
        box = page.get_by_role("button", name=name).first.bounding_box()
        assert box and box["width"] >= 120, (name, box)
