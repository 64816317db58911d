"""One measure of "cut off" for the browser tests: the page's HTML elements whose content is wider
than their box (scrollWidth against clientWidth), charts wider than their column, and — on the tree
page — tree texts Vega shortened with "…" or drawn outside their box."""

from __future__ import annotations

_COMMON = """
  const out = [];
  const main = document.querySelector('[data-testid="stMain"]');
  const over = (e) => e.scrollWidth > e.clientWidth + 1;
  const say = (kind, e) => out.push(kind + ': ' + (e.innerText || e.textContent || '').trim().slice(0, 60));
  main.querySelectorAll('[data-testid="stTable"] th, [data-testid="stTable"] td').forEach(e => over(e) && say('table cell', e));
  main.querySelectorAll('[data-testid="stTable"]').forEach(e => over(e) && say('table', e));
  main.querySelectorAll('button').forEach(b => {
    const inner = b.querySelector('[data-testid="stMarkdownContainer"]') || b;
    if (b.offsetParent !== null && (over(b) || over(inner))) say('button', b);
  });
  main.querySelectorAll('[data-testid="stMetricValue"], [data-testid="stMetricLabel"]').forEach(e => {
    const inner = e.querySelector('div') || e;
    if (over(e) || over(inner)) say('metric', e);
  });
  main.querySelectorAll('[data-testid="stVegaLiteChart"]').forEach(c => {
    const svg = c.querySelector('svg');
    if (svg && svg.getBoundingClientRect().right > c.getBoundingClientRect().right + 1) say('chart wider than its column', c);
  });
"""

_TREE = """
  const tree = main.querySelector('[data-testid="stVegaLiteChart"]');
  const boxes = [...tree.querySelectorAll('g.mark-rect path')].map(p => p.getBoundingClientRect());
  tree.querySelectorAll('g.mark-text text').forEach(t => {
    const text = t.textContent;
    if (text.endsWith('…')) say('tree text cut', t);
    const r = t.getBoundingClientRect();
    const home = boxes.find(b => r.top >= b.top - 1 && r.bottom <= b.bottom + 1 && r.left >= b.left - 1 && r.left <= b.right);
    if (!home || r.right > home.right + 1) say('tree text outside its box', t);
  });
"""

# for page.evaluate: a list of what is cut off, empty when nothing is
PAGE_CLIPPED = "() => {" + _COMMON + "  return out;\n}"
TREE_PAGE_CLIPPED = "() => {" + _COMMON + _TREE + "  return out;\n}"
