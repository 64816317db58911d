"""Two tabs flipping grain and period fast on a workspace nothing was computed for yet: no traceback on
either page.

Every Streamlit session shares one Engine (`ui._engine`) and the background warm-up reads beside
them, so this is where overlapping reruns used to meet on one DuckDB connection and one lock
("connection is busy with another call", "cannot release un-acquired lock", then a hang).
Each test opens a fresh copy of the demo workspace on the session's server: the Engine and every
cache are per workspace path, so nothing is cached for it and its warm-up starts with the first view,
as on a freshly started server (without a second server start).
"""

from __future__ import annotations

import re

from browser_wait import IDLE
from conftest import ARTIFACTS
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

BOX = "[data-testid='stVegaLiteChart'] path[aria-label*='label: {}']"
GRAIN_ORDER = ["quarter", "week", "year", "month"]
KEY = {"month": r"\d{4}-\d{2}", "quarter": r"\d{4}-Q\d", "week": r"\d{4}-W\d{2}", "year": r"\d{4}"}
SWITCHES = 10


def _switch(page, grain: str) -> bool:
    """Picks a grain, then the next period in the list, without waiting for the rerun in between;
    False when the page moved under the click (the next switch tries again)."""
    sidebar = page.get_by_test_id("stSidebar")
    try:
        page.bring_to_front()  # as a user does; a background tab's clicks wait for its throttled frames
        sidebar.get_by_test_id("stRadio").filter(has_text="Grain").get_by_text(grain, exact=True).click(timeout=10000)
        sidebar.get_by_test_id("stSelectbox").filter(has_text="Period").click(timeout=10000)
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
    except PlaywrightError:
        return False
    return True


def _tree_drawn(page, what: str) -> None:
    """Waits for the tree; a page that never draws it (a hung workspace) fails with what it shows."""
    try:
        page.wait_for_function(IDLE, timeout=90000)
        page.locator(BOX.format("ARR")).first.wait_for(timeout=90000)
    except PlaywrightError:
        page.screenshot(path=str(ARTIFACTS / "browser_switch_no_tree.png"), full_page=True)
        raise AssertionError(f"{what}: no tree after 90 s; the page shows: "
                             f"{page.locator('body').inner_text()[:1500]}") from None


def _settle(page, grain: str, what: str) -> None:
    """Waits for the last switch to reach the page (the tree's heading is of the grain picked last), for
    every rerun the tab asked for to be over, and for the tree to be drawn again."""
    try:
        expect(_heading_of_tree(page)).to_have_text(re.compile(rf" · {KEY[grain]}$"), timeout=90000)
    except AssertionError:
        pass  # the check after the settle says which heading it is instead
    _tree_drawn(page, what)


def _heading_of_tree(page):
    return page.get_by_role("heading", name=re.compile(" · ")).first


def test_two_tabs_switching_grain_and_period_fast_show_no_exception(browser, app_url, own_workspace):
    """A hang fails here without a stopwatch: a click waits at most 10 s, every switch must reach the page
    within the spare rounds, and `_settle` waits on Streamlit's own run state (`browser_wait.IDLE`) for the
    tabs' last runs to end and the tree to be drawn. How long 20 switches take measures the machine's load."""
    ws = own_workspace("switch")  # nothing cached for it, the warm-up starts with the first view
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    try:
        tabs = [context.new_page(), context.new_page()]
        for tab in tabs:
            tab.goto(f"{app_url}/?ws={ws}")
        for t, tab in enumerate(tabs):
            _tree_drawn(tab, f"tab {t + 1}, first view")
        done = [0, 0]
        last = ["month", "month"]
        for i in range(SWITCHES * 3):  # a few spare rounds for clicks that met a redraw
            if min(done) >= SWITCHES:
                break
            for t, tab in enumerate(tabs):
                grain = GRAIN_ORDER[i % len(GRAIN_ORDER)]
                if done[t] < SWITCHES and _switch(tab, grain):
                    done[t] += 1
                    last[t] = grain
        if done != [SWITCHES, SWITCHES]:
            for t, tab in enumerate(tabs):
                tab.screenshot(path=str(ARTIFACTS / f"browser_switch_stuck_tab{t + 1}.png"), full_page=True)
            shown = [tab.locator("body").inner_text()[:1500] for tab in tabs]
            raise AssertionError(f"switches that reached the page: {done}; the tabs show: {shown}")
        for t, tab in enumerate(tabs):
            _settle(tab, last[t], f"tab {t + 1}, after switching")
            tab.screenshot(path=str(ARTIFACTS / f"browser_switch_tab{t + 1}.png"), full_page=True)
        for t, tab in enumerate(tabs):
            body = tab.locator("body").inner_text()
            assert tab.locator("[data-testid='stException']").count() == 0, f"tab {t + 1}: {body[:2000]}"
            assert "Traceback" not in body, f"tab {t + 1}"
            assert "busy with another call" not in body and "un-acquired lock" not in body
            # the last switch reached the server: the tree is of the last grain picked
            heading = _heading_of_tree(tab).inner_text()
            assert re.search(rf" · {KEY[last[t]]}$", heading.strip()), (last[t], heading)
    finally:
        context.close()


BREAKAGE = ("busy with another call", "un-acquired lock", "NoneType", "Traceback", "is being loaded")


def _heading(page, text: str, what: str) -> None:
    """Waits for the node panel's heading; a tab that never shows it fails with what it shows."""
    try:
        page.wait_for_function(IDLE, timeout=90000)
        page.get_by_role("heading", name=text, exact=True).first.wait_for(timeout=90000)
    except PlaywrightError:
        page.screenshot(path=str(ARTIFACTS / "browser_four_tabs_no_panel.png"), full_page=True)
        raise AssertionError(f"{what}: no {text!r} panel after 90 s; the page shows: "
                             f"{page.locator('body').inner_text()[:1500]}") from None


def _clean(tabs, what: str) -> None:
    for t, tab in enumerate(tabs):
        body = tab.locator("body").inner_text()
        assert tab.locator("[data-testid='stException']").count() == 0, f"{what}, tab {t + 1}: {body[:2000]}"
        for text in BREAKAGE:
            assert text not in body, f"{what}, tab {t + 1} shows {text!r}: {body[:2000]}"


def test_four_tabs_opening_one_uncached_view_at_once(browser, app_url, own_workspace):
    """Four users (four sessions, one shared Engine) open the same link on a fresh workspace at the
    same moment — nothing cached, so all four compute the tree, the node's explanation, its
    segments and usage charts at once — then all four click the same other box at once. Every tab
    shows its panel; none shows an exception, a lock error or a hang (what issue 16 saw)."""
    ws = own_workspace("four-tabs")  # nothing cached for it: every tab computes
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1400}) for _ in range(4)]
    try:
        tabs = [c.new_page() for c in contexts]
        for tab in tabs:  # no waiting in between: the four first reruns overlap on the server
            tab.goto(f"{app_url}/?ws={ws}&grain=month&node=reports_adoption", wait_until="commit")
        for t, tab in enumerate(tabs):
            _tree_drawn(tab, f"tab {t + 1}, first view")
            _heading(tab, "Adoption — reports", f"tab {t + 1}, first view")
        _clean(tabs, "first view")
        boxes = [tab.locator(BOX.format("Logo churn rate")).first for tab in tabs]
        for box in boxes:
            box.wait_for(timeout=30000)
        for tab, box in zip(tabs, boxes, strict=True):  # the same uncached panel, four clicks at once
            tab.bring_to_front()
            box.click(timeout=30000, no_wait_after=True)
        for t, tab in enumerate(tabs):
            _heading(tab, "Logo churn rate", f"tab {t + 1}, after the click")
            tab.get_by_text("Split by").first.wait_for(timeout=60000)
            tab.screenshot(path=str(ARTIFACTS / f"browser_four_tabs_{t + 1}.png"), full_page=True)
        _clean(tabs, "after the click")
    finally:
        for c in contexts:
            c.close()
