"""Every page other than the tree, in Chromium at the narrowest and widest supported widths: it opens
without an error box, nothing in its tables, buttons or metrics is cut off, and a screenshot of it
is kept (tests/artifacts/page_<name>_<width>.png) for a person to look at."""

from __future__ import annotations

import pytest
from browser_wait import settle as drawn
from browser_wait import windows
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
def test_every_page_opens_whole_at_each_width(browser, app_url):
    """Each page opens in a window per width at once (their runs overlap on the server, as two users'
    would), then each window is checked."""
    problems: dict[str, list[str]] = {}
    with windows(browser, WIDTHS) as pages:
        for name, marker in PAGES.items():
            for page in pages.values():
                page.goto(f"{app_url}/{name}?ws=demo", wait_until="commit")
            for width, page in pages.items():
                settle(page, marker)
                page.screenshot(path=str(ARTIFACTS / f"page_{name.lower()}_{width}.png"), full_page=True)
                body = page.inner_text("body")
                assert "unexpected problem" not in body and "Traceback" not in body, (name, width)
                found = page.evaluate(PAGE_CLIPPED)
                if found:
                    problems[f"{name} at {width} px"] = found
    assert not problems, problems
