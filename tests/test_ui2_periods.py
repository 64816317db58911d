"""Owners and Review open on the period the tree page shows (trial 4: after the tree page at 2026-Q4, a link to
Owners opened 2026-11, then Review 2026-Q4, then Owners 2026-11 again)."""

from __future__ import annotations

from apptest_utils import failures, unescaped
from conftest import ROOT
from streamlit.testing.v1 import AppTest


def _heading(at: AppTest) -> str:
    return next(unescaped(m.value) for m in at.markdown if m.value.startswith("### "))


def test_owners_and_review_open_on_the_tree_pages_quarter(demo_copy, monkeypatch):
    monkeypatch.setenv("KPITREE_DATA_DIR", str(demo_copy.root.parent))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params.update({"ws": "demo", "tree": "revops", "grain": "quarter", "period": "2026-Q3"})
    at.run()
    assert not failures(at)
    for page, title in [("views/6_Owners.py", "Who to talk to"), ("views/5_Review.py", "Review"),
                        ("views/6_Owners.py", "Who to talk to")]:
        at.switch_page(page).run()
        assert not failures(at)
        assert _heading(at) == f"### {title} · RevOps KPI tree · 2026-Q3", page
        assert at.radio(key="grain").value == "quarter"
    # a grain chosen on one page is the next page's too
    at.radio(key="grain").set_value("month").run()
    month = at.selectbox(key="period").value
    at.switch_page("views/5_Review.py").run()
    assert _heading(at) == f"### Review · RevOps KPI tree · {month}"
