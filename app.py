"""KPI Tree — the entry point: names the pages for the navigation and runs the one the user opened.

`st.navigation` replaces the folder-derived names ("app", "1 Upload"): each page is named for what it
does, and the tree page keeps the root URL, so `?ws=…&tree=…&node=…` links keep working.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from kpitree.errors import page_failure
from kpitree.plain import markdown_text

HERE = Path(__file__).parent / "pages"

PAGES = [
    st.Page(HERE / "0_Tree.py", title="Tree", icon=":material/account_tree:", default=True),
    st.Page(HERE / "1_Upload.py", title="Upload", icon=":material/upload_file:", url_path="Upload"),
    st.Page(HERE / "2_Builder.py", title="Builder", icon=":material/edit:", url_path="Builder"),
    st.Page(HERE / "3_Definitions.py", title="Definitions", icon=":material/menu_book:", url_path="Definitions"),
    st.Page(HERE / "4_Workspaces.py", title="Workspaces", icon=":material/folder:", url_path="Workspaces"),
]

st.set_page_config(page_title="KPI Tree", page_icon="🌳", layout="wide")
page = st.navigation(PAGES)
try:
    page.run()
except Exception as exc:  # st.stop/st.rerun are BaseExceptions and pass through
    logging.getLogger("kpitree").exception("page %s failed", page.title)
    message, detail = page_failure(exc)
    st.error(markdown_text(message), icon=":material/error:")
    with st.expander("Details for a developer"):
        st.code(detail, language=None)
