"""`python -m kpitree users …`: the users file and workspace membership from the command line.

Why a command line: the first user (an administrator) must exist before anybody can sign in, and
a server's operator should not need the app to reset a password. Passwords are read from the
terminal without echo, or one line on standard input with `--password-stdin` (for scripts); they
never appear in an argument list, where other users of the machine could read them.
`kpitree/cli.py` hooks this in with `add_users_command(sub)` and handles its errors like every verb's.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from . import access
from .access import AccessError, Account, UsersFile
from .workspace import list_workspaces, workspace_path

EXIT_BAD_INPUT = 2


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir).expanduser().resolve() if args.data_dir else access.default_data_dir()


def _users(args: argparse.Namespace, create: bool = False) -> UsersFile:
    users = access.load_users(_data_dir(args))
    if users is None:
        if not create:
            raise AccessError(f"sign-in is off: there is no users file at {access.users_path(_data_dir(args))}; "
                              "add the first user with `python -m kpitree users add NAME --admin`")
        return UsersFile(access.users_path(_data_dir(args)))
    if users.problems and create:
        raise AccessError("the users file has entries that cannot be used; fix them first (they would be lost):\n  "
                          + "\n  ".join(users.problems))
    return users


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise AccessError("no terminal to ask for the password: pipe it in with --password-stdin")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Same password again: "):
        raise AccessError("the two passwords differ; nothing changed")
    return first


def cmd_add(args: argparse.Namespace) -> int:
    name = access.user_name(args.name)
    users = _users(args, create=True)
    if name in users.accounts:
        raise AccessError(f"user {name!r} exists already: use `users passwd {name}` to set a new password")
    was_on = users.path.exists()
    password = None if args.no_password else access.hash_password(_password(args))
    users.accounts[name] = Account(name, args.display or "", password, args.admin)
    access.save_users(users)
    print(f"added {name}" + (" (administrator)" if args.admin else "")
          + ("; signs in through the identity provider only" if password is None else ""))
    if not was_on:
        print(f"sign-in is now on: {users.path} exists. Delete that file to turn it off again.", file=sys.stderr)
        if not args.admin:
            print("note: workspaces without members are seen by administrators only; add one with --admin "
                  "or grant workspaces with `users grant`", file=sys.stderr)
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    name = access.user_name(args.name)
    users = _users(args)
    if name not in users.accounts:
        raise AccessError(f"no user {name!r} in {users.path}")
    old = users.accounts[name]
    users.accounts[name] = Account(name, old.display, access.hash_password(_password(args)), old.admin)
    access.save_users(users)
    print(f"password of {name} set")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    name = access.user_name(args.name)
    users = _users(args)
    if users.accounts.pop(name, None) is None:
        raise AccessError(f"no user {name!r} in {users.path}")
    access.save_users(users)
    print(f"removed {name}; their sessions are signed out at their next click")
    return 0


def _workspace(args: argparse.Namespace) -> Path:
    path = workspace_path(_data_dir(args), args.workspace)
    if not path.is_dir():
        raise AccessError(f"workspace {args.workspace!r} does not exist under {_data_dir(args)}")
    return path


def cmd_grant(args: argparse.Namespace) -> int:
    name = access.user_name(args.name)
    if name not in _users(args).accounts:
        raise AccessError(f"no user {name!r}: add them first with `python -m kpitree users add {name}`")
    access.set_member(_workspace(args), name, args.role)
    print(f"{name} is {args.role} of {args.workspace}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    access.set_member(_workspace(args), args.name, None)
    print(f"{access.user_name(args.name)} is no longer a member of {args.workspace}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    users = _users(args)
    names = list_workspaces(_data_dir(args))
    table = access.memberships(_data_dir(args), names)
    rows = [{"user": a.name, "name": a.display, "admin": a.admin, "password": a.password is not None,
             "workspaces": {ws: m[a.name] for ws, m in table.items() if a.name in m}}
            for a in users.accounts.values()]
    unowned = [ws for ws, m in table.items() if "owner" not in m.values()]
    if args.format == "json":
        json.dump({"users": rows, "without_owner": unowned, "problems": users.problems}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for r in rows:
        roles = ", ".join(f"{ws} ({role})" for ws, role in r["workspaces"].items()) or "no workspace"
        flags = " [admin]" if r["admin"] else ""
        flags += "" if r["password"] else " [provider sign-in only]"
        print(f"{r['user']}{flags}: {roles}")
    if unowned:
        print(f"without an owner (administrators only): {', '.join(unowned)}")
    for p in users.problems:
        print(f"problem: {p}", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    problems: list[str] = []
    try:
        users = access.load_users(_data_dir(args))
    except AccessError as exc:
        users, problems = None, [str(exc)]
    if users is not None:
        problems += [f"{users.path}: {p}" for p in users.problems]
    for ws in list_workspaces(_data_dir(args)):
        problems += [f"workspace {ws!r}: {p}" for p in access.member_problems(_data_dir(args) / ws)]
    if args.format == "json":
        json.dump({"sign_in": access.enabled(_data_dir(args)), "problems": problems}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(("sign-in is on" if access.enabled(_data_dir(args)) else "sign-in is off (no users file)")
              + (f"; {len(problems)} problem(s):" if problems else "; no problems"))
        for p in problems:
            print(f"  - {p}")
    return EXIT_BAD_INPUT if problems else 0


def add_users_command(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds the `users` verb to the `python -m kpitree` sub-commands."""
    p = sub.add_parser(
        "users", help="sign-in for teams: users, passwords and who may open which workspace",
        description="Sign-in for teams: it is on while the users file exists ($KPITREE_USERS_FILE, else "
                    "<data dir>/users.yaml).\n\nExamples:\n"
                    "  python -m kpitree users add alice --admin\n"
                    "  python -m kpitree users grant bob demo viewer\n"
                    "  echo \"$PW\" | python -m kpitree users passwd bob --password-stdin",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="where the workspaces are (default $KPITREE_DATA_DIR, else ./workspaces)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    verbs = p.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    a = verbs.add_parser("add", help="add a user (the first one turns sign-in on)")
    a.add_argument("name", help="user name or e-mail address (the e-mail for provider sign-in)")
    a.add_argument("--display", help="the name the app shows")
    a.add_argument("--admin", action="store_true", help="owner of every workspace, sees those without members")
    a.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    a.add_argument("--no-password", action="store_true", help="signs in through the identity provider only")
    a.set_defaults(func=cmd_add)

    a = verbs.add_parser("passwd", help="set a user's password")
    a.add_argument("name")
    a.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    a.set_defaults(func=cmd_passwd)

    a = verbs.add_parser("remove", help="remove a user (their memberships stay, unused)")
    a.add_argument("name")
    a.set_defaults(func=cmd_remove)

    a = verbs.add_parser("grant", help="give a user a role in a workspace")
    a.add_argument("name")
    a.add_argument("workspace")
    a.add_argument("role", choices=access.ROLES)
    a.set_defaults(func=cmd_grant)

    a = verbs.add_parser("revoke", help="take a user out of a workspace")
    a.add_argument("name")
    a.add_argument("workspace")
    a.set_defaults(func=cmd_revoke)

    verbs.add_parser("list", help="users, administrators and their workspaces").set_defaults(func=cmd_list)
    verbs.add_parser("check", help="report every unusable entry of the users and members files"
                     ).set_defaults(func=cmd_check)
    return p

