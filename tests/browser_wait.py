"""Waiting in the browser tests on what the check needs, never for a fixed time.

Streamlit marks its root element with the script's state (`data-test-script-state`: "running",
"notRunning", …) — the same mark Streamlit's own end-to-end tests wait on. A finished run is not yet
a drawn page: Vega draws each chart after the run's last delta and redraws it once it knows its
column's width. So `settle` waits until the run is over, every chart has drawn its SVG, and the page
(its size, its element count, every chart's size and marks) has stayed the same for a short quiet
spell. That is met in a few hundred milliseconds on an idle machine, and simply takes longer on a
loaded one, where a fixed sleep was either too short (a flaky check of a half-drawn page) or too
long everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

IDLE = "() => document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState === 'notRunning'"

_SETTLED = """(quiet) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const main = document.querySelector('[data-testid="stMain"]');
  const reset = () => { window.__kpitreeSettle = null; return false; };
  if (!app || !main || app.dataset.testScriptState !== 'notRunning') return reset();
  if (app.dataset.testConnectionState && app.dataset.testConnectionState !== 'CONNECTED') return reset();
  const charts = [...main.querySelectorAll('[data-testid="stVegaLiteChart"]')];
  const drawn = charts.map(c => c.querySelector('svg'));
  if (drawn.some(svg => !svg || svg.getBoundingClientRect().width === 0)) return reset();
  const sig = [main.scrollWidth, main.scrollHeight, main.querySelectorAll('*').length,
               ...charts.map((c, i) => { const r = drawn[i].getBoundingClientRect();
                 return [Math.round(r.width), Math.round(r.height), drawn[i].querySelectorAll('*').length].join(','); })
              ].join('|');
  const now = performance.now();
  const last = window.__kpitreeSettle;
  if (!last || last.sig !== sig) { window.__kpitreeSettle = {sig, since: now}; return false; }
  return now - last.since >= quiet;
}"""


def settle(page, timeout: float = 90.0, quiet_ms: int = 300) -> None:
    """Until the run is over and the page drawn: no script running, every chart's SVG drawn, nothing
    changing for `quiet_ms`. Call it once the view the check is about has started to show (its
    heading or marker found): right after a click the run may not have started yet."""
    page.evaluate("() => { window.__kpitreeSettle = null; }")
    page.wait_for_function(_SETTLED, arg=quiet_ms, polling=100, timeout=timeout * 1000)


def wait_idle(page, timeout: float = 90.0) -> None:
    """Until Streamlit has no script run going for this page."""
    page.wait_for_function(IDLE, polling=100, timeout=timeout * 1000)


@contextmanager
def windows(browser, widths, height: int = 1000) -> Iterator[dict]:
    """One browser window (context) per width, closed after: {width: page}. A test that checks the same
    views at several widths starts each step in every window before waiting on any, so the windows' runs
    overlap on the server and their drawing overlaps in Chromium, as several users' do (a 2-core
    machine otherwise idles on one window's round trip at a time)."""
    contexts = {w: browser.new_context(viewport={"width": w, "height": height}) for w in widths}
    try:
        yield {w: c.new_page() for w, c in contexts.items()}
    finally:
        for c in contexts.values():
            c.close()
