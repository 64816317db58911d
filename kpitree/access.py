"""Who may see what: optional sign-in, and each workspace's members (owner, editor, viewer).

Off by default. Without a users file the app is what it always was: one local user who sees and
may change everything (`LOCAL`), so the quick start stays `make run`. Sign-in turns on when the
users file exists: `$KPITREE_USERS_FILE`, else `<data dir>/users.yaml`. A broken users file keeps
sign-in on and lets nobody in (fail closed): it never falls back to "everything visible".

Why these choices:
- Passwords are stored as Argon2id hashes made by `argon2-cffi` (the winner of the Password Hashing
  Competition, OWASP's first choice; memory-hard, so a stolen file is costly to crack on GPUs; a
  maintained binding with its own rehash check). bcrypt was the other candidate: it silently (or,
  since 5.0, loudly) stops at 72 bytes of password, Argon2 has no such limit. One hash takes about
  0.2 s and 64 MiB, so verifications run two at a time (`_VERIFYING`) and a name that failed five
  times in five minutes waits 30 s: a flood of sign-ins can neither exhaust memory nor guess fast.
  An unknown name is checked against a dummy hash, so timing does not tell which names exist.
- A team that has an identity provider uses Streamlit's `st.login` (OIDC, `[auth]` in
  `.streamlit/secrets.toml`, needs Authlib): the users file then lists who may enter, by e-mail,
  with or without a password. The provider proves who somebody is; this module decides what
  they see, the same way for both kinds of sign-in.
- Membership lives in the workspace folder (`<workspace>/members.yaml`), not in the users file:
  it moves with a rename, goes to `.trash` with a delete and comes back with a restore, and a
  workspace copied to another server keeps its members. A workspace without members (the demo,
  one made by a command-line load) is seen by administrators only (`admin: true`), who grant it.
- Roles are ranked: a viewer reads; an editor also loads data and saves trees; an owner also
  renames, deletes and manages members. An administrator is an owner of every workspace.
- Both files are YAML people may edit by hand, read with aliases refused and a size limit (a
  512-byte alias bomb must not cost gigabytes). A bad entry is left out and reported by name and
  line; the other users still sign in.

The core never imports Streamlit: a page passes the name its session signed in with (kept under
`SESSION_KEY`, read by `ui.current_user`) to `current_user`; the command line passes none.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import KpiTreeError

log = logging.getLogger("kpitree.access")

USERS_FILE = "users.yaml"
MEMBERS_FILE = "members.yaml"
SESSION_KEY = "kpitree_user"  # st.session_state entry holding the signed-in user's name
ROLES = ("viewer", "editor", "owner")  # ranked: each may do what the ones before it may
# What each action needs. "create" needs no workspace: any signed-in user may make one (and owns it).
ACTIONS = {"view": "viewer", "load": "editor", "save_tree": "editor", "edit": "editor",
           "rename": "owner", "delete": "owner", "manage_members": "owner"}
_ENTRY_KEYS = {"name", "password", "admin"}
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,127}")
_MAX_FILE_BYTES = 1_000_000
MIN_PASSWORD = 8
_FAIL_LIMIT, _FAIL_WINDOW, _FAIL_WAIT = 5, 300.0, 30.0
_VERIFYING = threading.BoundedSemaphore(2)


class AccessError(KpiTreeError):
    """A sign-in or membership change that is refused; the message says why and what to do."""


class UsersFileError(AccessError):
    """The users file as a whole cannot be read: nobody can sign in until it is fixed."""


@dataclass(frozen=True)
class User:
    """Somebody using the app. `local` is the one user of a server without sign-in."""

    name: str
    display: str = ""
    admin: bool = False
    local: bool = False

    @property
    def label(self) -> str:
        return self.display or self.name


LOCAL = User("local", "local user", admin=True, local=True)


@dataclass(frozen=True)
class Account:
    name: str
    display: str = ""
    password: str | None = None  # an Argon2 hash; None: signs in through the identity provider only
    admin: bool = False

    def user(self) -> User:
        return User(self.name, self.display, self.admin)


@dataclass
class UsersFile:
    path: Path
    accounts: dict[str, Account] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # bad entries, left out


# --- names, files, hashing ------------------------------------------------------------------------


def default_data_dir() -> Path:
    """$KPITREE_DATA_DIR, else ./workspaces beside the app (the rule ui.data_dir follows)."""
    return Path(os.environ.get("KPITREE_DATA_DIR", Path(__file__).resolve().parent.parent / "workspaces")).resolve()


def users_path(data_dir: str | Path | None = None) -> Path:
    """Where the users file is: $KPITREE_USERS_FILE, else `<data dir>/users.yaml`."""
    if os.environ.get("KPITREE_USERS_FILE"):
        return Path(os.environ["KPITREE_USERS_FILE"]).expanduser().resolve()
    return Path(data_dir if data_dir is not None else default_data_dir()).expanduser().resolve() / USERS_FILE


def enabled(data_dir: str | Path | None = None) -> bool:
    """Sign-in is on while a users file exists (even a broken one: then nobody gets in)."""
    return users_path(data_dir).exists()


def user_name(name: object) -> str:
    """A user name as stored: lower case, letters, digits and . _ @ + - (an e-mail address fits)."""
    text = str(name or "").strip().lower()
    if not _NAME_RE.fullmatch(text):
        raise AccessError(f"invalid user name {str(name)!r}: use letters, digits and . _ @ + -, up to 128 "
                          "characters, starting with a letter or digit (an e-mail address works)")
    return text


def _hasher():
    from argon2 import PasswordHasher  # imported when a password is checked: a local run never needs it

    return PasswordHasher()


def hash_password(password: str) -> str:
    """An Argon2id hash of `password` (at least MIN_PASSWORD characters)."""
    if len(password or "") < MIN_PASSWORD:
        raise AccessError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher().hash(password)


def verify_password(hashed: str, password: str) -> bool:
    """True if `password` matches `hashed`; False for a wrong password or a hash that is not Argon2."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    with _VERIFYING:
        try:
            return _hasher().verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def _is_hash(value: str) -> bool:
    from argon2 import extract_parameters
    from argon2.exceptions import InvalidHashError

    try:
        extract_parameters(value)
        return True
    except (InvalidHashError, ValueError, IndexError):
        return False


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without aliases: `*name` could expand a few bytes into gigabytes."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(f"line {mark.line + 1}: aliases (*name) are not allowed in this file")
        return super().compose_node(parent, index)


def _read_mapping(path: Path, top: str) -> tuple[dict, dict[str, int]]:
    """The `top:` mapping of a small YAML file and each of its keys' line numbers."""
    try:
        size = path.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise AccessError(f"{path} is {size:,} bytes; at most {_MAX_FILE_BYTES:,} are read")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise AccessError(f"{path} is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise AccessError(f"{path} cannot be read: {exc.strerror or exc}") from None
    loader = _NoAliasLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise AccessError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()
    if data is None:
        return {}, {}
    if not isinstance(data, dict) or not isinstance(data.get(top, {}), dict | None):
        raise AccessError(f"{path} must hold a mapping '{top}:' of names (see the README section "
                          "'Teams: sign-in and membership')")
    if set(map(str, data)) - {top}:
        raise AccessError(f"{path}: unknown top-level key(s) {', '.join(sorted(set(map(str, data)) - {top}))}; "
                          f"only '{top}:' belongs there")
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        if key_node.value == top and isinstance(value_node, yaml.MappingNode):
            lines = {str(k.value): k.start_mark.line + 1 for k, _ in value_node.value}
    return data.get(top) or {}, lines


_CACHE_LOCK = threading.Lock()
_CACHE: dict[Path, tuple[tuple[int, int], Any]] = {}


def _cached(path: Path, parse):
    """`parse(path)`, read again only when the file changed (every rerun asks)."""
    try:
        st = path.stat()
    except OSError:
        st = None
    stamp = (st.st_mtime_ns, st.st_size) if st else (0, -1)
    with _CACHE_LOCK:
        hit = _CACHE.get(path)
        if hit and hit[0] == stamp:
            return hit[1]
    value = parse(path)
    with _CACHE_LOCK:
        _CACHE[path] = (stamp, value)
    return value


# --- the users file --------------------------------------------------------------------------------


def _parse_users(path: Path) -> UsersFile:
    try:
        raw, lines = _read_mapping(path, "users")
    except AccessError as exc:
        raise UsersFileError(f"the users file cannot be used, so nobody can sign in: {exc}") from None
    out = UsersFile(path)
    for key, entry in raw.items():
        where = f"user {str(key)!r}" + (f" (line {lines[str(key)]})" if str(key) in lines else "")
        try:
            name = user_name(key)
            entry = entry or {}
            if not isinstance(entry, dict):
                raise AccessError("expected name, password and admin under it")
            unknown = set(map(str, entry)) - _ENTRY_KEYS
            if unknown:
                raise AccessError(f"unknown key(s) {', '.join(sorted(unknown))} (known: admin, name, password)")
            password = entry.get("password")
            if password is not None and not (isinstance(password, str) and _is_hash(password)):
                raise AccessError("its password is not an Argon2 hash (a password in clear text?): set it with "
                                  f"`python -m kpitree users passwd {name}`")
            admin = entry.get("admin", False)
            if not isinstance(admin, bool):
                raise AccessError("admin must be true or false")
            if name in out.accounts:
                raise AccessError("listed twice")
            out.accounts[name] = Account(name, str(entry.get("name") or ""), password, admin)
        except AccessError as exc:
            out.problems.append(f"{where}: {exc}; this user cannot sign in")
    for problem in out.problems:
        log.info("%s: %s", path, problem)
    return out


def load_users(data_dir: str | Path | None = None) -> UsersFile | None:
    """The users file (None: sign-in is off). A UsersFileError if it cannot be read at all."""
    path = users_path(data_dir)
    if not path.exists():
        return None
    return _cached(path, _parse_users)


def save_users(users: UsersFile) -> None:
    """Writes the users file whole (readable by its owner only: it holds password hashes)."""
    body: dict[str, dict] = {}
    for name in sorted(users.accounts):
        acc = users.accounts[name]
        entry: dict[str, Any] = {}
        if acc.display:
            entry["name"] = acc.display
        if acc.password:
            entry["password"] = acc.password
        if acc.admin:
            entry["admin"] = True
        body[name] = entry
    header = ("# KPI Tree users: sign-in is on while this file exists. Passwords are Argon2 hashes;\n"
              "# change them with `python -m kpitree users` (see README, 'Teams: sign-in and membership').\n")
    _write(users.path, header + yaml.safe_dump({"users": body}, sort_keys=False, allow_unicode=True), private=True)


def _write(path: Path, text: str, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    if private:
        tmp.chmod(0o600)
    tmp.replace(path)
    with _CACHE_LOCK:
        _CACHE.pop(path.resolve(), None)
        _CACHE.pop(path, None)


# --- signing in ------------------------------------------------------------------------------------

_FAILS: dict[str, deque[float]] = {}
_FAILS_LOCK = threading.Lock()
_DUMMY: list[str] = []


def _wait_left(name: str, now: float) -> float:
    with _FAILS_LOCK:
        fails = _FAILS.get(name)
        while fails and now - fails[0] > _FAIL_WINDOW:
            fails.popleft()
        if fails and len(fails) >= _FAIL_LIMIT:
            return max(0.0, fails[-1] + _FAIL_WAIT - now)
    return 0.0


def sign_in(users: UsersFile, name: str, password: str) -> User:
    """The user whose password this is; an AccessError that does not say which half was wrong."""
    key = str(name or "").strip().lower()
    now = time.monotonic()
    wait = _wait_left(key, now)
    if wait > 0:
        raise AccessError(f"Too many failed sign-ins for this name: wait {wait:.0f} s and try again.")
    account = users.accounts.get(key)
    hashed = account.password if account and account.password else None
    if hashed is None:  # same work as a real check, so timing does not reveal which names exist
        if not _DUMMY:
            _DUMMY.append(_hasher().hash("not a password of anybody"))
        hashed = _DUMMY[0]
    ok = verify_password(hashed, password or "") and account is not None and account.password is not None
    if not ok:
        with _FAILS_LOCK:
            if len(_FAILS) > 10_000:  # names tried at random must not fill the memory
                for stale in [k for k, v in _FAILS.items() if not v or now - v[-1] > _FAIL_WINDOW]:
                    del _FAILS[stale]
            _FAILS.setdefault(key, deque()).append(time.monotonic())
        raise AccessError("Wrong user name or password.")
    with _FAILS_LOCK:
        _FAILS.pop(key, None)
    return account.user()


def provider_user(users: UsersFile, email: object, verified: object = True) -> User:
    """The user an identity provider vouched for (`st.user.email`), if the users file lists them."""
    if not email:
        raise AccessError("The identity provider did not give an e-mail address; ask an administrator to "
                          "configure it to send one (scope 'openid profile email').")
    if verified is False:
        raise AccessError("The identity provider says this e-mail address is not verified.")
    key = str(email).strip().lower()
    account = users.accounts.get(key)
    if account is None:
        raise AccessError(f"{email} is not on this server's list of users: ask an administrator to add you "
                          f"(`python -m kpitree users add {key}`).")
    return account.user()


def current_user(data_dir: str | Path | None = None, signed_in: object = None) -> User | None:
    """Who uses a session that signed in as `signed_in` (a name, or None): `LOCAL` when sign-in is
    off; that user, or None when nobody is (or the user was removed from the users file since, or
    the file is broken)."""
    try:
        users = load_users(data_dir)
    except UsersFileError:
        return None
    if users is None:
        return LOCAL
    account = users.accounts.get(signed_in) if isinstance(signed_in, str) else None
    return account.user() if account else None


# --- membership ------------------------------------------------------------------------------------


def _ws_dir(workspace: Any) -> Path:
    """The folder of a Workspace, or the folder given (a Path's own `.root` is "/", not this)."""
    return Path(workspace if isinstance(workspace, str | Path) else workspace.root)


def _parse_members(path: Path) -> tuple[dict[str, str], list[str]]:
    raw, lines = _read_mapping(path, "members")
    out: dict[str, str] = {}
    problems: list[str] = []
    for key, role in raw.items():
        where = f"member {str(key)!r}" + (f" (line {lines[str(key)]})" if str(key) in lines else "")
        try:
            name = user_name(key)
        except AccessError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if role not in ROLES:
            problems.append(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
            continue
        out[name] = role
    return out, problems


def _safe_members(path: Path) -> tuple[dict[str, str], list[str]]:
    if not path.exists():
        return {}, []
    try:
        return _parse_members(path)
    except AccessError as exc:  # unreadable: no member at all (administrators still see it)
        log.warning("%s", exc)
        return {}, [str(exc)]


def members(workspace: Any) -> dict[str, str]:
    """The workspace's members and their roles ({} when it has none, or its file is unreadable)."""
    return _cached((_ws_dir(workspace) / MEMBERS_FILE).resolve(), _safe_members)[0]


def member_problems(workspace: Any) -> list[str]:
    return _cached((_ws_dir(workspace) / MEMBERS_FILE).resolve(), _safe_members)[1]


def role_of(user: User | None, workspace: Any) -> str | None:
    """The user's role in the workspace (owner for the local user and administrators)."""
    if user is None:
        return None
    if user.local or user.admin:
        return "owner"
    return members(workspace).get(user.name)


def can(user: User | None, workspace: Any, action: str) -> bool:
    """Whether `user` may do `action` ("view", "load", "save_tree", "edit", "rename", "delete",
    "manage_members"; "create" needs no workspace) in `workspace` (a Workspace or its folder)."""
    if action == "create":
        return user is not None
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    role = role_of(user, workspace)
    return role is not None and ROLES.index(role) >= ROLES.index(ACTIONS[action])


_NOBODY: Any = object()


def visible_workspaces(names: list[str], data_dir: str | Path | None = None, user: User | None = _NOBODY
                       ) -> list[str]:
    """The names among `names` (under the data directory) the user may open; all of them when sign-in
    is off. Without `user`: whoever `current_user` finds with nobody signed in (the command line)."""
    root = Path(data_dir if data_dir is not None else default_data_dir())
    who = current_user(data_dir) if user is _NOBODY else user
    if who is not None and (who.local or who.admin):
        return list(names)
    return [n for n in names if can(who, root / n, "view")]


_MEMBERS_LOCK = threading.Lock()


def _save_members(workspace: Any, table: dict[str, str]) -> None:
    header = ("# Who may open this workspace when KPI Tree sign-in is on: owner, editor or viewer.\n"
              "# Change it on the Workspaces page or with `python -m kpitree users grant/revoke`.\n")
    _write(_ws_dir(workspace) / MEMBERS_FILE, header + yaml.safe_dump({"members": table}, sort_keys=True))


def set_member(workspace: Any, name: str, role: str | None) -> dict[str, str]:
    """Gives `name` a role in the workspace (None removes them); refuses to leave it without an owner."""
    key = user_name(name)
    if role is not None and role not in ROLES:
        raise AccessError(f"role {role!r} is not one of {', '.join(ROLES)}")
    folder = _ws_dir(workspace)
    if not folder.is_dir():
        raise AccessError(f"workspace {folder.name!r} does not exist")
    with _MEMBERS_LOCK:
        path = folder / MEMBERS_FILE
        table = dict(_parse_members(path)[0]) if path.exists() else {}
        if role is None and key not in table:
            raise AccessError(f"{key} is not a member of {folder.name!r}")
        had_owner = "owner" in table.values()
        if role is None:
            table.pop(key)
        else:
            table[key] = role
        if had_owner and "owner" not in table.values():
            raise AccessError(f"{key} is the last owner of {folder.name!r}: make somebody else owner first")
        _save_members(folder, table)
    return table


def claim(workspace: Any, user: User | None) -> None:
    """Makes a signed-in user the owner of a workspace they just created (nothing in local mode)."""
    if user is None or user.local:
        return
    set_member(workspace, user.name, "owner")


def memberships(data_dir: str | Path, names: list[str]) -> dict[str, dict[str, str]]:
    """{workspace: {user: role}} for the given workspace names (for listings)."""
    return {n: members(Path(data_dir) / n) for n in names}
