"""`academichub users create|list|disable|enable|reset-password`: accounts from the server's own
shell (the use cases are app/accounts.py). Passwords are read twice from a hidden prompt, or once
from standard input with --password-stdin (for scripts); they are never echoed nor logged.

Registered by cli.py. The shared helpers (_hub, _fail, out, console) are looked up on the cli
module when a command runs."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from . import cli as _cli
from .errors import AcademicHubError
from .terminal import add_text_row, error_line, text_table

users_app = typer.Typer(help="Accounts: create, list, disable, reset a password.", no_args_is_help=True)

EmailArg = Annotated[str, typer.Argument(help="The account's e-mail address (its login).", show_default=False)]
StdinOpt = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input (one line).")]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    first = typer.prompt("Password", hide_input=True)
    again = typer.prompt("Password again", hide_input=True)
    if first != again:
        _cli.console.print(error_line("the two passwords differ"))
        raise typer.Exit(1)
    return first


@users_app.command("create")
def users_create(
    email: EmailArg,
    admin: Annotated[bool, typer.Option("--admin", help="An administrator (manages sources and users).")] = False,
    password_stdin: StdinOpt = False,
) -> None:
    """Create an account (the first one is an administrator and takes over the radars made so far)."""
    from .app import accounts

    password = _password(password_stdin)
    try:
        hub = _cli._hub()
        user_id = accounts.create_user(hub, email, password, is_admin=admin)
        account = accounts.get_user(hub, user_id)
    except AcademicHubError as exc:
        _cli._fail(exc)
    role = "administrator" if account.is_admin else "user"
    _cli.out.print(f"created {role} {account.email} (id {user_id})")


@users_app.command("list")
def users_list(fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table") -> None:
    """Every account: e-mail, role, created, disabled."""
    from .app import accounts

    try:
        rows = accounts.list_users(_cli._hub())
    except AcademicHubError as exc:
        _cli._fail(exc)
    if fmt == "json":
        _cli.out.print_json(json.dumps([
            {"id": u.id, "email": u.email, "is_admin": u.is_admin, "created_at": u.created_at,
             "disabled_at": u.disabled_at, "password": u.password_hash is not None} for u in rows],
            default=str, ensure_ascii=False))
        return
    table = text_table(f"{len(rows)} accounts", ["id", "email", "role", "created", "disabled"])
    for u in rows:
        add_text_row(table, str(u.id), u.email or "", "admin" if u.is_admin else "user", str(u.created_at)[:19],
                     str(u.disabled_at or "")[:19])
    _cli.out.print(table)


@users_app.command("disable")
def users_disable(email: EmailArg) -> None:
    """Disable an account: no login, its sessions ended, its API tokens refused."""
    from .app import accounts

    try:
        accounts.disable_user(_cli._hub(), email)
    except AcademicHubError as exc:
        _cli._fail(exc)
    _cli.out.print(f"disabled {email.strip().lower()}")


@users_app.command("enable")
def users_enable(email: EmailArg) -> None:
    """Enable a disabled account again."""
    from .app import accounts

    try:
        accounts.enable_user(_cli._hub(), email)
    except AcademicHubError as exc:
        _cli._fail(exc)
    _cli.out.print(f"enabled {email.strip().lower()}")


@users_app.command("reset-password")
def users_reset_password(email: EmailArg, password_stdin: StdinOpt = False) -> None:
    """Set a new password (every session of the account is ended)."""
    from .app import accounts

    password = _password(password_stdin)
    try:
        hub = _cli._hub()
        account = accounts.find_user(hub, email)
        if account is None:
            raise accounts.AccountError.translatable("no account {email}", email=accounts.normalize_email(email))
        accounts.set_password(hub, account.id, password)
    except AcademicHubError as exc:
        _cli._fail(exc)
    _cli.out.print(f"password of {account.email} changed; its sessions were ended")
