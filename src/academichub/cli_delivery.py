"""`academichub digest send RADAR --to ADDRESS [--date D] [--lang zh|en]`: one radar's digest
mailed now, to check a mail set-up (the scheduled digests go out through the job system, per
delivery channel: app/delivery.py).

Registered by cli.py. The shared helpers (_settings, _fail, out, console) are looked up on the cli
module when a command runs."""

from __future__ import annotations

from datetime import date as Date
from typing import Annotated, Optional

import typer

from . import cli as _cli
from .errors import AcademicHubError
from .terminal import as_text

digest_app = typer.Typer(help="E-mail digests: send one now to check the mail set-up.", no_args_is_help=True)

SMTP_SETTINGS = ("smtp_host", "smtp_port", "smtp_security", "smtp_username", "smtp_from")


class DigestCommandError(AcademicHubError):
    """A `digest send` the command refuses (a bad date or language)."""


@digest_app.command("send")
@_cli.setting_flags(*SMTP_SETTINGS)
def digest_send(
    radar: Annotated[str, typer.Argument(help="Radar name (or id).", show_default=False)],
    to: Annotated[str, typer.Option("--to", help="The address to mail the digest to.", show_default=False)],
    date: Annotated[Optional[str], typer.Option("--date", help="Announced day YYYY-MM-DD (default: the newest).",
                                                show_default=False)] = None,
    lang: Annotated[Optional[str], typer.Option("--lang", help="zh or en (default: the default_language setting).",
                                                show_default=False)] = None,
) -> None:
    """Send one radar's digest (its briefing and ranked papers with their why) to ADDRESS now, and
    print what the SMTP server answered."""
    from .app.delivery import send_digest_now

    try:
        day = None
        if date is not None:
            try:
                day = Date.fromisoformat(date.strip())
            except ValueError:
                raise DigestCommandError(f"--date {date!r}: use YYYY-MM-DD") from None
        if lang is not None and lang not in ("zh", "en"):
            raise DigestCommandError(f"--lang {lang!r}: use zh or en")
        hub = _cli._user_hub()
        try:
            result = send_digest_now(hub, radar, to, day=day, lang=lang)
        finally:
            hub.close()
    except AcademicHubError as exc:
        _cli._fail(exc)
    _cli.out.print(as_text(f"sent to {to}: {result.message_id} ({result.detail})"))
