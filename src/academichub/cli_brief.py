"""`academichub brief NAME [--date D] [--week] [--lang zh|en] [--format md|json] [--regenerate]`:
the briefing of a radar's top papers for a day (or the week ending that day).

Registered by cli.py (`app.command("brief")(brief_command)`). The shared helpers (_settings,
_engine, _fail, out, console) are looked up on the cli module when the command runs."""

from __future__ import annotations

import json
from datetime import date as Date
from typing import Annotated, Optional

import typer

from . import cli as _cli
from .errors import AcademicHubError
from .terminal import warning_line


class BriefError(AcademicHubError):
    """A briefing request the command refuses (a bad date, language or format)."""


def _parse_day(value: str) -> Date:
    try:
        return Date.fromisoformat(value.strip())
    except ValueError:
        raise BriefError(f"--date {value!r}: use YYYY-MM-DD") from None


def resolve_period(day: Date, week: bool) -> tuple[tuple[Date, Date], tuple[Date, Date]]:
    """(period, previous period): brief.briefing.periods (near 0001-01-01 too)."""
    from .brief.briefing import periods

    return periods(day, week)


@_cli.setting_flags("default_language", "briefing_papers", "embedding_model", *_cli.LLM_SETTINGS)
def brief_command(
    name: Annotated[str, typer.Argument(help="Radar name (or id); 'all' briefs every paper of the period.",
                                        show_default=False)],
    date: Annotated[Optional[str], typer.Option("--date", help="Day YYYY-MM-DD (default: the latest announced day).")] = None,
    week: Annotated[bool, typer.Option("--week", help="Brief the 7 days ending on --date.")] = False,
    lang: Annotated[Optional[str], typer.Option("--lang", help="zh or en (default: the default_language setting).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md or json.")] = "md",
    regenerate: Annotated[bool, typer.Option("--regenerate", help="Write a new briefing; the stored one is kept, superseded.")] = False,
) -> None:
    """Brief a radar's top papers of a day or week: themes, cross-domain links, what to read first, what changed."""
    from .app.briefings import latest_day, resolve_radar
    from .brief.briefing import normalise_lang, render_markdown, to_json

    try:
        if fmt not in ("md", "json"):
            raise BriefError(f"--format {fmt!r}: use md or json")
        settings = _cli._settings()
        try:
            language = normalise_lang(lang or settings.default_language)
        except ValueError as exc:
            raise BriefError(str(exc)) from None
        # `all` names no radar, so no user; a radar's name is its owner's
        hub = _cli._hub(settings, per_user=name.strip().lower() != "all")
        day = _parse_day(date) if date else (latest_day(hub) or Date.today())
        period, _previous = resolve_period(day, week)
        radar_id = resolve_radar(hub, name, missing_ok=True)
        if radar_id is None and name.strip().lower() != "all":
            _cli.console.print(f"no radar named {name!r}: briefing every paper of the period")
        briefing, _radar_id, _day = hub.briefing(radar_id, day, week=week, lang=language, regenerate=regenerate)
        if not briefing.papers:
            _cli.console.print(f"no papers from {period[0]} to {period[1]}")
        if briefing.fallback_reason:
            _cli.console.print(warning_line(f"LLM briefing failed, extractive briefing instead: {briefing.fallback_reason}"))
        if fmt == "json":
            text = json.dumps(to_json(briefing), ensure_ascii=False, indent=2)
        else:
            text = render_markdown(briefing, link="page", base_url=f"http://{settings.host}:{settings.port}")
        _cli.out.print(text)
    except AcademicHubError as exc:
        _cli._fail(exc)
