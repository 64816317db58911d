"""Sign-in and membership rules (kpitree.access) and the `users` command line (kpitree.access_cli)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from kpitree import access
from kpitree.access import LOCAL, AccessError, Account, User, UsersFile
from kpitree.cli import main as cli

REAL_HASHER = access._hasher


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    """Failed sign-ins are counted per process: each test starts with none. Hashes are made cheap
    (0.2 s and 64 MiB each is the point in production, not in 20 tests); the hashing test uses the real ones."""
    from argon2 import PasswordHasher

    monkeypatch.delenv("KPITREE_USERS_FILE", raising=False)
    monkeypatch.setattr(access, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    access._FAILS.clear()
    yield
    access._FAILS.clear()


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    for name in ("alpha", "beta", "gamma"):
        (root / name).mkdir(parents=True)
    monkeypatch.setenv("KPITREE_DATA_DIR", str(root))
    return root


def write_users(root: Path, **passwords: str | None) -> UsersFile:
    users = UsersFile(access.users_path(root))
    for name, pw in passwords.items():
        users.accounts[name] = Account(name, name.title(), access.hash_password(pw) if pw else None, name == "admin")
    access.save_users(users)
    return access.load_users(root)


# --- hashing ---------------------------------------------------------------------------------------


def test_a_password_is_stored_as_an_argon2id_hash_that_verifies_only_itself(monkeypatch):
    monkeypatch.setattr(access, "_hasher", REAL_HASHER)
    hashed = access.hash_password("correct horse")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and "correct horse" not in hashed
    assert hashed != access.hash_password("correct horse")  # salted
    assert access.verify_password(hashed, "correct horse")
    assert not access.verify_password(hashed, "correct hors")
    assert not access.verify_password(hashed, "")
    assert not access.verify_password("correct horse", "correct horse")  # a clear-text "hash" never matches
    assert not access.verify_password("$argon2id$garbage", "x")


def test_a_short_password_is_refused_with_the_rule():
    with pytest.raises(AccessError, match="at least 8 characters"):
        access.hash_password("short")


# --- roles and membership -------------------------------------------------------------------------


def test_each_role_may_do_what_it_should_and_no_more(data_dir):
    ws = data_dir / "alpha"
    access.set_member(ws, "olga", "owner")
    access.set_member(ws, "eddy", "editor")
    access.set_member(ws, "vera", "viewer")
    expected = {  # action → who may
        "view": {"olga", "eddy", "vera"},
        "load": {"olga", "eddy"}, "save_tree": {"olga", "eddy"}, "edit": {"olga", "eddy"},
        "rename": {"olga"}, "delete": {"olga"}, "manage_members": {"olga"},
    }
    for action, allowed in expected.items():
        for name in ("olga", "eddy", "vera", "nina"):
            assert access.can(User(name), ws, action) == (name in allowed), (action, name)
        assert not access.can(None, ws, action)  # nobody signed in
        assert access.can(LOCAL, ws, action)  # sign-in off: the local user does everything
        assert access.can(User("root", admin=True), ws, action)  # an administrator owns every workspace
        assert not access.can(User("olga"), data_dir / "beta", action)  # a member of one is nobody in another
    assert access.can(User("nina"), None, "create") and not access.can(None, None, "create")
    with pytest.raises(ValueError):
        access.can(User("olga"), ws, "drop everything")


def test_membership_changes_keep_an_owner_and_refuse_bad_input(data_dir):
    ws = data_dir / "alpha"
    access.claim(ws, User("Olga"))  # names are case-insensitive
    assert access.members(ws) == {"olga": "owner"}
    access.claim(data_dir / "beta", LOCAL)  # local mode: nobody to own it
    assert access.members(data_dir / "beta") == {}
    with pytest.raises(AccessError, match="last owner"):
        access.set_member(ws, "olga", "viewer")
    with pytest.raises(AccessError, match="last owner"):
        access.set_member(ws, "olga", None)
    access.set_member(ws, "pat", "owner")
    access.set_member(ws, "olga", None)
    assert access.members(ws) == {"pat": "owner"}
    with pytest.raises(AccessError, match="not one of viewer, editor, owner"):
        access.set_member(ws, "pat", "god")
    with pytest.raises(AccessError, match="invalid user name"):
        access.set_member(ws, "../../etc", "viewer")
    with pytest.raises(AccessError, match="not a member"):
        access.set_member(ws, "olga", None)
    with pytest.raises(AccessError, match="does not exist"):
        access.set_member(data_dir / "nope", "pat", "owner")
    assert (ws / access.MEMBERS_FILE).read_text().count("pat: owner") == 1
    assert not (data_dir / access.MEMBERS_FILE).exists() and not Path("/members.yaml").exists()


def test_a_members_file_with_bad_entries_keeps_the_good_ones_and_says_which(data_dir):
    ws = data_dir / "alpha"
    (ws / access.MEMBERS_FILE).write_text("members:\n  olga: owner\n  eddy: boss\n  '<b>x</b>': viewer\n")
    assert access.members(ws) == {"olga": "owner"}
    problems = access.member_problems(ws)
    assert any("'eddy' (line 3)" in p and "boss" in p for p in problems)
    assert any("line 4" in p and "invalid user name" in p for p in problems)


def test_an_unreadable_members_file_shuts_the_workspace_to_all_but_administrators(data_dir):
    ws = data_dir / "alpha"
    (ws / access.MEMBERS_FILE).write_text("members: &m\n  olga: owner\nagain: *m\n")  # an alias: refused
    assert access.members(ws) == {}
    assert "aliases (*name) are not allowed" in access.member_problems(ws)[0]
    assert not access.can(User("olga"), ws, "view") and access.can(User("root", admin=True), ws, "view")
    (ws / access.MEMBERS_FILE).write_text("members: [olga]\n")
    assert access.members(ws) == {} and "must hold a mapping 'members:'" in access.member_problems(ws)[0]


def test_only_the_workspaces_a_user_belongs_to_are_visible(data_dir):
    access.set_member(data_dir / "alpha", "olga", "owner")
    access.set_member(data_dir / "beta", "vera", "viewer")
    names = ["alpha", "beta", "gamma"]
    assert access.visible_workspaces(names, data_dir, User("olga")) == ["alpha"]
    assert access.visible_workspaces(names, data_dir, User("vera")) == ["beta"]
    assert access.visible_workspaces(names, data_dir, User("nina")) == []
    assert access.visible_workspaces(names, data_dir, None) == []
    assert access.visible_workspaces(names, data_dir, User("root", admin=True)) == names  # gamma has no members
    assert access.visible_workspaces(names, data_dir, LOCAL) == names
    assert access.visible_workspaces(names, data_dir) == names  # no users file, no session: local mode


# --- the users file and signing in ----------------------------------------------------------------


def test_sign_in_is_off_without_a_users_file_and_fail_closed_with_a_broken_one(data_dir, monkeypatch):
    assert not access.enabled(data_dir) and access.load_users(data_dir) is None
    assert access.current_user(data_dir) == LOCAL
    write_users(data_dir, olga="olga-secret")
    assert access.enabled(data_dir)
    assert access.current_user(data_dir) is None  # on, and nobody signed in (no Streamlit session here)
    (data_dir / access.USERS_FILE).write_text("users:\n  olga: {password: [unclosed\n")
    with pytest.raises(access.UsersFileError, match="nobody can sign in.*not valid YAML"):
        access.load_users(data_dir)
    assert access.current_user(data_dir) is None  # never falls back to "everything visible"
    other = data_dir.parent / "elsewhere.yaml"
    monkeypatch.setenv("KPITREE_USERS_FILE", str(other))
    assert access.users_path(data_dir) == other.resolve() and not access.enabled(data_dir)


def test_a_users_file_with_bad_entries_names_them_and_the_others_still_sign_in(data_dir):
    good = access.hash_password("olga-secret")
    (data_dir / access.USERS_FILE).write_text(
        "users:\n"
        f"  olga:\n    password: '{good}'\n"
        "  dave:\n    password: hunter2hunter2\n"  # clear text
        "  eve: [1, 2]\n"
        "  fred:\n    pasword: x\n"
        "  'bad name!': {}\n"
        "  gina:\n    admin: 'yes'\n"
        "  hal:\n"  # no password: signs in through the identity provider only
    )
    users = access.load_users(data_dir)
    assert set(users.accounts) == {"olga", "hal"}
    text = "\n".join(users.problems)
    assert "user 'dave' (line 4): its password is not an Argon2 hash" in text
    assert "users passwd dave" in text
    assert "user 'eve' (line 6)" in text and "user 'fred' (line 7): unknown key(s) pasword" in text
    assert "invalid user name" in text and "user 'gina' (line 10): admin must be true or false" in text
    assert access.sign_in(users, "OLGA", "olga-secret") == User("olga", "", False)
    for name, pw in (("dave", "hunter2hunter2"), ("hal", ""), ("hal", "anything")):
        with pytest.raises(AccessError, match="Wrong user name or password"):
            access.sign_in(users, name, pw)


def test_hostile_users_files_are_refused_quickly_with_a_message(data_dir):
    path = data_dir / access.USERS_FILE
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f'{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n'
        for i in range(8))
    path.write_text(bomb)
    started = time.perf_counter()
    with pytest.raises(access.UsersFileError, match="aliases"):
        access.load_users(data_dir)
    assert time.perf_counter() - started < 1
    path.write_text("users:\n" + "  x: {}\n" * 200_000)
    with pytest.raises(access.UsersFileError, match="at most 1,000,000 are read"):
        access.load_users(data_dir)
    path.write_bytes(b"users:\n  \xff\xfe: {}\n")
    with pytest.raises(access.UsersFileError, match="not UTF-8"):
        access.load_users(data_dir)
    path.write_text("alice: {password: x}\n")  # forgot the 'users:' level
    with pytest.raises(access.UsersFileError, match="unknown top-level key"):
        access.load_users(data_dir)


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer_and_repeated_failures_wait(data_dir):
    users = write_users(data_dir, olga="olga-secret")
    for name in ("olga", "nobody"):
        with pytest.raises(AccessError) as err:
            access.sign_in(users, name, "guess-1234")
        assert str(err.value) == "Wrong user name or password."
    for _ in range(4):
        with pytest.raises(AccessError, match="Wrong"):
            access.sign_in(users, "olga", "guess-1234")
    with pytest.raises(AccessError, match=r"Too many failed sign-ins for this name: wait \d+ s"):
        access.sign_in(users, "olga", "olga-secret")  # even the right password waits
    access._FAILS.clear()
    assert access.sign_in(users, "olga", "olga-secret").name == "olga"


def test_an_identity_provider_user_enters_only_when_listed(data_dir):
    users = write_users(data_dir, **{"carol@acme.com": None})
    assert access.provider_user(users, "Carol@Acme.com").name == "carol@acme.com"
    with pytest.raises(AccessError, match="not on this server's list"):
        access.provider_user(users, "mallory@acme.com")
    with pytest.raises(AccessError, match="not verified"):
        access.provider_user(users, "carol@acme.com", verified=False)
    with pytest.raises(AccessError, match="did not give an e-mail"):
        access.provider_user(users, None)


# --- the command line ------------------------------------------------------------------------------


def users_cli(capsys, monkeypatch, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = cli(["users", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_users_command_adds_users_sets_passwords_and_grants_workspaces(data_dir, capsys, monkeypatch):
    code, out, err = users_cli(capsys, monkeypatch, "check")
    assert code == 0 and "sign-in is off" in out
    code, out, err = users_cli(capsys, monkeypatch, "add", "Alice", "--admin", "--password-stdin",
                               stdin="alice-secret\n")
    assert code == 0 and "added alice (administrator)" in out and "sign-in is now on" in err
    assert (data_dir / access.USERS_FILE).stat().st_mode & 0o077 == 0  # password hashes: owner only
    assert "alice-secret" not in (data_dir / access.USERS_FILE).read_text()
    assert users_cli(capsys, monkeypatch, "add", "bob", "--password-stdin", stdin="bob-secret\n")[0] == 0
    assert users_cli(capsys, monkeypatch, "grant", "bob", "alpha", "viewer")[:2] == (0, "bob is viewer of alpha\n")
    users = access.load_users(data_dir)
    assert access.sign_in(users, "alice", "alice-secret").admin
    assert access.members(data_dir / "alpha") == {"bob": "viewer"}
    assert users_cli(capsys, monkeypatch, "passwd", "bob", "--password-stdin", stdin="bob-secret-2\n")[0] == 0
    assert access.sign_in(access.load_users(data_dir), "bob", "bob-secret-2").name == "bob"
    code, out, _ = users_cli(capsys, monkeypatch, "list")
    assert "alice [admin]: no workspace" in out and "bob: alpha (viewer)" in out
    assert "without an owner (administrators only): alpha, beta, gamma" in out
    assert users_cli(capsys, monkeypatch, "revoke", "bob", "alpha")[0] == 0
    assert access.members(data_dir / "alpha") == {}
    code, out, _ = users_cli(capsys, monkeypatch, "remove", "bob")
    assert code == 0 and set(access.load_users(data_dir).accounts) == {"alice"}


@pytest.mark.parametrize(("argv", "stdin", "message"), [
    (("add", "bob", "--password-stdin"), "short\n", "at least 8 characters"),
    (("add", "alice", "--password-stdin"), "another-secret\n", "exists already"),
    (("add", "bad name!", "--password-stdin"), "whatever-123\n", "invalid user name"),
    (("add", "carol"), "", "no terminal to ask for the password"),
    (("passwd", "nobody", "--password-stdin"), "whatever-123\n", "no user 'nobody'"),
    (("grant", "nobody", "alpha", "viewer"), "", "add them first"),
    (("grant", "alice", "nope", "viewer"), "", "workspace 'nope' does not exist"),
    (("grant", "alice", "../etc", "viewer"), "", "invalid workspace name"),
    (("revoke", "alice", "alpha"), "", "not a member"),
])
def test_the_users_command_refuses_bad_input_in_one_line(data_dir, capsys, monkeypatch, argv, stdin, message):
    users_cli(capsys, monkeypatch, "add", "alice", "--password-stdin", stdin="alice-secret\n")
    before = (data_dir / access.USERS_FILE).read_text()
    code, _, err = users_cli(capsys, monkeypatch, *argv, stdin=stdin)
    assert code == 2 and message in err and err.startswith("error: ") and "Traceback" not in err
    assert (data_dir / access.USERS_FILE).read_text() == before


def test_check_reports_every_unusable_entry_and_fails(data_dir, capsys, monkeypatch):
    users_cli(capsys, monkeypatch, "add", "alice", "--password-stdin", stdin="alice-secret\n")
    with (data_dir / access.USERS_FILE).open("a") as f:
        f.write("  dave:\n    password: hunter2hunter2\n")
    (data_dir / "beta" / access.MEMBERS_FILE).write_text("members:\n  alice: boss\n")
    code, out, _ = users_cli(capsys, monkeypatch, "check")
    assert code == 2 and "2 problem(s)" in out and "user 'dave'" in out and "workspace 'beta'" in out
    code, out, err = users_cli(capsys, monkeypatch, "add", "erin", "--password-stdin", stdin="erin-secret\n")
    assert code == 2 and "fix them first" in err  # rewriting the file would drop dave's entry


def test_failed_names_tried_at_random_are_forgotten_once_stale(data_dir):
    users = write_users(data_dir, olga="olga-secret")
    long_ago = time.monotonic() - 3600
    access._FAILS.update({f"n{i}": access.deque([long_ago]) for i in range(10_001)})
    with pytest.raises(AccessError):
        access.sign_in(users, "someone", "guess-1234")
    assert set(access._FAILS) == {"someone"}
