"""Every page other than the tree, in Chromium at the narrowest and widest supported widths: it opens
without an error box, nothing in its tables, buttons or metrics is cut off, and a screenshot of it
is kept (tests/artifacts/page_<name>_<width>.png) for a person to look at."""

from __future__ import annotations

import pytest
from browser_wait import settle as drawn
from clipping import PAGE_CLIPPED
from conftest import ARTIFACTS

PAGES = {"Upload": "Upload data", "Builder": "Live preview", "Definitions": "Metric definitions",
         "Workspaces": "Workspaces"}
WIDTHS = [1280, 1920]



def settle(page, text: str, timeout: float = 90.0) -> None:
    """Until the page's marker is shown, its run is over and its charts are drawn."""
    page.get_by_text(text).first.wait_for(timeout=timeout * 1000)
    drawn(page, timeout=timeout)


@pytest.mark.flaky(reruns=1)
@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_opens_whole_at_each_width(browser, app_url, width):
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    problems: dict[str, list[str]] = {}
    try:
        for name, marker in PAGES.items():
            page.goto(f"{app_url}/{name}?ws=demo")
            settle(page, marker)
            page.screenshot(path=str(ARTIFACTS / f"page_{name.lower()}_{width}.png"), full_page=True)
            body = page.inner_text("body")
            assert "unexpected problem" not in body and "Traceback" not in body, name
            found = page.evaluate(PAGE_CLIPPED)
            if found:
                problems[name] = found
    finally:
        context.close()
    assert not problems, problems
