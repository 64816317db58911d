"""The navigation (app.py) with sign-in off and on, and the Workspaces page's lists, owners and members."""

from __future__ import annotations

from pathlib import Path

import pytest
from apptest_utils import failures, unescaped
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from kpitree import access
from kpitree.access import Account, UsersFile
from kpitree.workspace import list_workspaces

APP = str(ROOT / "app.py")
WORKSPACES = str(ROOT / "views" / "4_Workspaces.py")
ALL_PAGES = ["Tree", "Upload", "Builder", "Definitions", "Workspaces", "Review", "Owners"]


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch):
    from argon2 import PasswordHasher

    monkeypatch.delenv("KPITREE_USERS_FILE", raising=False)
    monkeypatch.setattr(access, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    access._FAILS.clear()


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    for name in ("alpha", "beta"):
        (root / name).mkdir(parents=True)
    monkeypatch.setenv("KPITREE_DATA_DIR", str(root))
    return root


@pytest.fixture
def team(data_dir) -> Path:
    """Sign-in on: olga owns alpha, vera views alpha, eddy edits alpha; beta belongs to bert."""
    users = UsersFile(access.users_path(data_dir))
    for name in ("olga", "vera", "eddy", "bert"):
        users.accounts[name] = Account(name, name.title(), access.hash_password(f"{name}-secret"))
    users.accounts["root"] = Account("root", "", access.hash_password("root-secret"), admin=True)
    access.save_users(users)
    access.set_member(data_dir / "alpha", "olga", "owner")
    access.set_member(data_dir / "alpha", "vera", "viewer")
    access.set_member(data_dir / "alpha", "eddy", "editor")
    access.set_member(data_dir / "beta", "bert", "owner")
    return data_dir


def pages(at: AppTest) -> list[str]:
    return [p["page_name"] for p in at._registered_pages.values()]


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="signin_name").set_value(name)
    at.text_input(key="signin_password").set_value(password)
    return at.button[0].click().run()  # the form's submit button


def signed_in(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    return sign_in(at, name, f"{name}-secret")


def workspaces_listed(at: AppTest) -> list[str]:
    table = at.table[0].value
    return [w.replace(" (this session)", "") for w in table.index]


# --- sign-in off -----------------------------------------------------------------------------------


def test_without_a_users_file_every_page_and_workspace_is_there_as_before(data_dir):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not failures(at) and pages(at) == ALL_PAGES
    assert not [t for t in at.text_input if t.key == "signin_password"] and "Sign out" not in [b.label for b in at.button]
    at.switch_page("views/4_Workspaces.py").run()
    assert not failures(at) and workspaces_listed(at) == ["alpha", "beta"]
    assert "your role" not in at.table[0].value.columns and not [s for s in at.subheader if s.value == "Members"]
    at.text_input(key="ws_new").set_value("gamma")
    at.button(key="ws_create").click().run()
    assert "gamma" in list_workspaces(data_dir) and not (data_dir / "gamma" / access.MEMBERS_FILE).exists()
    assert at.selectbox(key="ws_delete_name").options == ["alpha", "beta", "gamma"]


# --- sign-in on ------------------------------------------------------------------------------------


def test_nobody_signed_in_gets_the_sign_in_page_only(team):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not failures(at) and pages(at) == ["Sign in"] and at.title[0].value == "Sign in to KPI Tree"
    for page in ("views/0_Tree.py", "views/1_Upload.py", "views/4_Workspaces.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)
    assert not at.table and not at.dataframe  # no workspace listed to an anonymous visitor


def test_a_wrong_password_is_refused_and_the_right_one_lets_in(team):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at = sign_in(at, "olga", "not-her-password")
    assert not failures(at) and pages(at) == ["Sign in"]
    assert [unescaped(e.value) for e in at.error] == ["Wrong user name or password."]
    at = sign_in(at, "nobody", "olga-secret")
    assert pages(at) == ["Sign in"] and unescaped(at.error[0].value) == "Wrong user name or password."
    at = sign_in(at, "olga", "olga-secret")
    assert not failures(at) and pages(at) == ALL_PAGES and not at.error
    assert at.session_state[access.SESSION_KEY] == "olga"
    assert "Signed in as Olga" in [c.value for c in at.sidebar.caption]
    at.button(key="signout").click().run()
    assert pages(at) == ["Sign in"] and access.SESSION_KEY not in at.session_state


def test_a_viewer_has_no_upload_or_builder_and_sees_only_their_workspaces(team):
    at = signed_in("vera")
    assert not failures(at) and pages(at) == ["Tree", "Definitions", "Workspaces", "Review", "Owners"]
    for page in ("views/1_Upload.py", "views/2_Builder.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)
    at.switch_page("views/4_Workspaces.py").run()
    assert not failures(at)
    assert workspaces_listed(at) == ["alpha"]  # bert's beta is not listed
    assert at.table[0].value.iloc[0]["your role"] == "viewer"
    keys = {w.key for w in [*at.selectbox, *at.button]}
    assert "ws_create" in keys and not keys & {"ws_rename", "ws_delete", "mem_grant", "ws_delete_name"}
    assert signed_in("eddy").session_state[access.SESSION_KEY] == "eddy"
    assert pages(signed_in("eddy")) == ALL_PAGES  # an editor loads data and saves trees


def test_the_pages_follow_the_role_in_the_sessions_workspace(team):
    access.set_member(team / "beta", "vera", "editor")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["ws"] = "beta"
    at = sign_in(at.run(), "vera", "vera-secret")
    assert pages(at) == ALL_PAGES
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["ws"] = "alpha"
    at = sign_in(at.run(), "vera", "vera-secret")
    assert pages(at) == ["Tree", "Definitions", "Workspaces", "Review", "Owners"]


def test_an_owner_manages_members_and_deletes_only_what_they_own(team):
    at = signed_in("olga")
    at.switch_page("views/4_Workspaces.py").run()
    assert not failures(at) and workspaces_listed(at) == ["alpha"]
    assert at.selectbox(key="ws_delete_name").options == ["alpha"]
    members = next(d.value for d in at.dataframe if "role" in d.value.columns)
    assert dict(zip(members["user"], members["role"], strict=True)) == {"eddy": "editor", "olga": "owner",
                                                                           "vera": "viewer"}
    at.selectbox(key="mem_user").set_value("bert")
    at.selectbox(key="mem_role").set_value("viewer")
    at.button(key="mem_grant").click().run()
    assert not failures(at) and access.members(team / "alpha")["bert"] == "viewer"
    assert unescaped(at.success[0].value) == "bert is now viewer of 'alpha'."
    at.selectbox(key="mem_remove_user").set_value("olga")
    at.button(key="mem_remove").click().run()
    assert "last owner" in unescaped(at.error[0].value) and access.members(team / "alpha")["olga"] == "owner"
    at.selectbox(key="mem_remove_user").set_value("vera")
    at.button(key="mem_remove").click().run()
    assert "vera" not in access.members(team / "alpha")
    # A workspace olga creates is hers.
    at.text_input(key="ws_new").set_value("olgas")
    at.button(key="ws_create").click().run()
    assert access.members(team / "olgas") == {"olga": "owner"}
    assert sorted(workspaces_listed(at)) == ["alpha", "olgas"]


def test_a_demoted_owner_cannot_delete_with_the_form_they_still_see(team):
    at = signed_in("olga")
    at.switch_page("views/4_Workspaces.py").run()
    at.selectbox(key="ws_delete_name").set_value("alpha")
    at.text_input(key="ws_delete_confirm").set_value("alpha")
    access.set_member(team / "alpha", "bert", "owner")
    access.set_member(team / "alpha", "olga", "viewer")  # meanwhile, on another screen
    at.button(key="ws_delete").click().run()
    assert "alpha" in list_workspaces(team) and "You may not do that" in unescaped(at.error[0].value)


def test_an_administrator_sees_every_workspace_and_workspaces_without_members(team):
    (team / "gamma").mkdir()
    at = signed_in("root")
    assert pages(at) == ALL_PAGES
    assert "(administrator)" in " ".join(c.value for c in at.sidebar.caption)
    at.switch_page("views/4_Workspaces.py").run()
    assert workspaces_listed(at) == ["alpha", "beta", "gamma"]


def test_a_user_removed_from_the_users_file_is_signed_out_at_the_next_click(team):
    at = signed_in("vera")
    assert pages(at) != ["Sign in"]
    users = access.load_users(team)
    del users.accounts["vera"]
    access.save_users(users)
    at.run()
    assert pages(at) == ["Sign in"]


def test_a_broken_users_file_lets_nobody_in_and_says_so_plainly(team):
    (team / access.USERS_FILE).write_text("users: [\n")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not failures(at) and pages(at) == ["Sign in"]
    assert "cannot be read, so nobody can sign in" in unescaped(at.error[0].value)
    assert not [t for t in at.text_input if t.key == "signin_password"]


def test_a_bad_entry_in_the_users_file_leaves_the_others_able_to_sign_in(team):
    with (team / access.USERS_FILE).open("a") as f:
        f.write("  dave:\n    password: hunter2hunter2\n")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert "1 entry of the users file cannot be used" in unescaped(at.caption[0].value)
    assert "dave" not in at.caption[0].value  # names are for the administrator's `users check`
    at = sign_in(at, "dave", "hunter2hunter2")
    assert pages(at) == ["Sign in"]
    assert pages(sign_in(at, "olga", "olga-secret")) == ALL_PAGES


def test_an_identity_provider_user_enters_when_listed_and_only_then(team):
    users = access.load_users(team)
    users.accounts["carol@acme.com"] = Account("carol@acme.com")
    access.save_users(users)
    access.set_member(team / "beta", "carol@acme.com", "viewer")
    auth = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                     "client_id": "id", "client_secret": "s", "server_metadata_url": "https://idp/.well-known"}}
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets = auth
    at.user = {"is_logged_in": False}
    at.run()
    assert pages(at) == ["Sign in"] and "Sign in with your identity provider" in [b.label for b in at.button]
    at.user = {"is_logged_in": True, "email": "Carol@acme.com", "email_verified": True}
    at.run()
    assert not failures(at) and pages(at) == ["Tree", "Definitions", "Workspaces", "Review", "Owners"]
    at.switch_page("views/4_Workspaces.py").run()
    assert workspaces_listed(at) == ["beta"]
    at.run()
    at.button(key="signout").click().run()
    assert pages(at) == ["Sign in"] and at.user == {"is_logged_in": False}  # st.logout ended the provider's session
    other = AppTest.from_file(APP, default_timeout=60)
    other.secrets = auth
    other.user = {"is_logged_in": True, "email": "mallory@acme.com"}
    other.run()
    assert pages(other) == ["Sign in"] and "not on this server's list" in unescaped(other.error[0].value)


def test_a_users_file_nobody_can_use_says_how_to_add_the_first_user(data_dir):
    (data_dir / access.USERS_FILE).write_text("users: {}\n")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not failures(at) and pages(at) == ["Sign in"]
    assert "users add NAME --admin" in unescaped(at.error[0].value)


def test_a_provider_without_a_users_file_keeps_the_app_closed(data_dir):
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets = {"auth": {"client_id": "id"}}
    at.user = {"is_logged_in": True, "email": "anyone@example.com"}
    at.run()
    assert not failures(at) and pages(at) == ["Sign in"] and "no users file" in unescaped(at.error[0].value)


def test_the_workspaces_page_run_without_app_py_shows_nothing_to_an_anonymous_visitor(team):
    """Defence in depth: the pages live in views/ so Streamlit never serves one without app.py, and
    the page itself still lists nothing until somebody signed in."""
    at = AppTest.from_file(WORKSPACES, default_timeout=60).run()
    assert not failures(at) and not at.table and not at.dataframe and not at.button
    assert [unescaped(w.value) for w in at.warning] == ["Sign in to see your workspaces."]


def test_names_typed_on_the_page_are_shown_as_text_never_as_markdown(data_dir):
    at = AppTest.from_file(WORKSPACES, default_timeout=60).run()
    at.text_input(key="ws_rename_to").set_value("![x](https://evil.example/p.png)")
    at.button(key="ws_rename").click().run()
    shown = at.error[0].value
    assert "invalid workspace name" in shown and "](" not in shown and "\\!\\[x\\]\\(https" in shown


# --- the real server -------------------------------------------------------------------------------


def test_in_the_browser_a_viewer_signs_in_and_gets_no_upload_and_a_new_tab_signs_in_again(team, page):
    """The real server (not AppTest): the sign-in form, a refused and an accepted password, the
    navigation of a viewer, and a page URL opened in a new session lands on the sign-in form."""
    from conftest import ARTIFACTS, running_app

    with running_app(team, STREAMLIT_SERVER_FILE_WATCHER_TYPE="none") as url:
        page.goto(url)
        page.get_by_text("Sign in to KPI Tree").wait_for(timeout=60_000)
        assert page.locator("[data-testid=stSidebarNavLink]").count() == 0
        page.get_by_label("User name").fill("vera")
        page.get_by_role("textbox", name="Password").fill("not-her-password")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Wrong user name or password.").wait_for(timeout=30_000)
        page.get_by_role("textbox", name="Password").fill("vera-secret")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Signed in as Vera").wait_for(timeout=30_000)
        links = page.locator("[data-testid=stSidebarNavLink]")
        links.first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "browser_viewer_signed_in.png"), full_page=True)
        assert [t.split("\n")[-1] for t in links.all_inner_texts()] == ["Tree", "Definitions", "Workspaces", "Review", "Owners"]
        page.goto(f"{url}/Upload")  # a new session: signed out, and no Upload page for it
        page.get_by_text("Sign in to KPI Tree").wait_for(timeout=60_000)
        assert page.get_by_text("Upload data").count() == 0
