"""`academichub papers import FILE` and `academichub radar …`: reference libraries in, and radars
(what to follow, the papers to start from, what the reader said) kept from the command line.

Registered by cli.py. The shared helpers (_settings, _engine, _fail, out, console) are looked up on
the cli module when a command runs, so cli.py may import this module wherever it likes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
from . import cli as _cli
from .errors import AcademicHubError
from .terminal import add_text_row, text_table, warning_line

radar_app = typer.Typer(help="Radars: authors, keywords, categories and venues to follow, seed papers, feedback.",
                        no_args_is_help=True)

_RULE_OPTIONS = (  # (rule kind, label shown by `radar show`)
    ("author", "authors"), ("mute_author", "muted authors"), ("keyword", "keywords"),
    ("exclude", "excluded"), ("category", "categories"), ("venue", "venues"),
)
NameArg = Annotated[str, typer.Argument(help="Radar name (or id).", show_default=False)]
FileArg = Annotated[Path, typer.Argument(help="BibTeX, RIS, CSL-JSON or JSON-lines file (format is detected).",
                                         show_default=False)]


def _warn_skipped(library) -> None:
    for reason in library.skipped[:10]:
        _cli.console.print(warning_line(reason))
    if len(library.skipped) > 10:
        _cli.console.print(f"… and {len(library.skipped) - 10} more entries skipped")
    for note in library.notes[:10]:
        _cli.console.print(note)


def _import(hub, file: Path):
    """Import a library file and say so in one line; a file none of whose entries could be stored
    is an error (AcademicHubError, which the caller handles)."""
    summary, library = hub.import_library(file)
    _warn_skipped(library)
    for error in summary.errors[:10]:
        _cli.console.print(warning_line(error))
    _cli.out.print(f"{file}: {summary.line()}, {len(library.skipped)} skipped")
    if nothing_stored := _cli._nothing_stored(summary, str(file), skipped=len(library.skipped), what="entries"):
        raise AcademicHubError(nothing_stored)
    return summary, library


def _embed_stored(hub) -> None:
    """Vectors for the papers just stored (and any other without one), as after an ingest: seeds
    or library papers without a vector would make every ranking fall back to text."""
    if not hub.settings.embed_on_ingest or hub.vector_gap() is None:
        return
    _cli._embed_missing(hub, hub.settings)


def papers_import_command(file: FileArg) -> None:
    """Import a reference library (BibTeX, RIS, CSL-JSON, JSON lines) into the store, one paper per work."""
    try:
        hub = _cli._hub()
        _import(hub, file)
        _embed_stored(hub)
    except AcademicHubError as exc:
        _cli._fail(exc)


@radar_app.command("create")
def radar_create(
    name: NameArg,
    author: Annotated[Optional[list[str]], typer.Option("--author", help="Follow this author (repeatable).")] = None,
    mute_author: Annotated[Optional[list[str]], typer.Option("--mute-author", help="Never show this author (repeatable).")] = None,
    keyword: Annotated[Optional[list[str]], typer.Option("--keyword", help="Follow this word or phrase (repeatable).")] = None,
    exclude: Annotated[Optional[list[str]], typer.Option("--exclude", help="Hide papers with this phrase (repeatable).")] = None,
    category: Annotated[Optional[list[str]], typer.Option("--category", help="arXiv category, e.g. cs.LG (repeatable).")] = None,
    venue: Annotated[Optional[list[str]], typer.Option("--venue", help="Journal or conference (repeatable).")] = None,
    interest: Annotated[Optional[str], typer.Option("--interest", help="What you are looking for, in a sentence or two.")] = None,
) -> None:
    """Create a radar with its rules (all or nothing: one bad rule creates no radar)."""
    from .store.radars import add_rule, create_radar, default_user, get_radar

    given = dict(author=author, mute_author=mute_author, keyword=keyword, exclude=exclude, category=category, venue=venue)
    try:
        hub = _cli._user_hub()
        with hub.writing() as conn:
            radar_id = create_radar(conn, user_id=default_user(conn), name=name, interest=interest)
            for kind, values in given.items():
                for value in values or []:
                    add_rule(conn, radar_id, kind, value)
            rules = sum(len(r) for r in get_radar(conn, radar_id).rules.values())  # variants of one rule count once
    except AcademicHubError as exc:
        _cli._fail(exc)
    _cli.out.print(f"radar {name!r} created (id {radar_id}) with {rules} rules")


@radar_app.command("seed")
def radar_seed(name: NameArg, file: FileArg) -> None:
    """Import a library file and make every paper in it a seed of the radar."""
    from .store.radars import require_radar

    try:
        hub = _cli._user_hub()
        with hub.reading() as conn:
            require_radar(conn, name)  # before the import: a typo in the name must not import the file
        _summary, library = _import(hub, file)
        ids, added = hub.seed_radar(name, library, origin=file.name)
    except AcademicHubError as exc:
        _cli._fail(exc)
    unstored = len(library.papers) - len(ids)
    tail = f"; {unstored} entries without identifier are not stored, so not seeds" if unstored > 0 else ""
    _cli.out.print(
        f"radar {name!r}: {added} new seeds, {len(ids)} papers from {file.name}{tail}"
    )
    try:
        _embed_stored(hub)  # the seeds are kept whatever happens here
    except AcademicHubError as exc:
        _cli._fail(exc)


@radar_app.command("feedback")
def radar_feedback(
    name: NameArg,
    paper: Annotated[str, typer.Argument(help="Store id, arXiv id or DOI.", show_default=False)],
    action: Annotated[str, typer.Argument(help="like, save, dismiss, less-author or less-topic.", show_default=False)],
    value: Annotated[Optional[str], typer.Option("--value", help="The author or topic for less-author / less-topic.")] = None,
) -> None:
    """Tell the radar what you think of a paper."""
    from .store.radars import RadarError, add_feedback, find_paper, require_radar

    try:
        hub = _cli._user_hub()
        with hub.writing() as conn:
            radar_id = require_radar(conn, name)
            paper_id = find_paper(conn, paper)
            if paper_id is None:
                raise RadarError(f"no paper {paper!r} in the store (give a store id, arXiv id or DOI)")
            add_feedback(conn, radar_id, paper_id, action, value)
    except AcademicHubError as exc:
        _cli._fail(exc)
    about = f" ({value})" if value else ""
    _cli.out.print(f"radar {name!r}: {action.replace('_', '-')}{about} on paper {paper_id}")


@radar_app.command("show")
def radar_show(name: NameArg, fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text") -> None:
    """A radar's interest, rules, and how many seeds and feedback it holds."""
    from .store.radars import RadarError, get_radar

    try:
        if fmt not in ("text", "json"):
            raise AcademicHubError(f"--format must be text or json, not {fmt!r}")
        hub = _cli._user_hub()
        with hub.reading() as conn:
            radar = get_radar(conn, name)
        if radar is None:
            raise RadarError(f"no radar {name!r}")
    except AcademicHubError as exc:
        _cli._fail(exc)
    feedback = Counter(f.action for f in radar.feedback)
    if fmt == "json":
        import json

        _cli.out.print_json(json.dumps({
            "id": radar.id, "name": radar.name, "interest": radar.interest, "settings": radar.settings,
            "rules": {kind: [{"value": r.value, "key": r.value_key, "orcid": r.orcid} for r in rules]
                      for kind, rules in radar.rules.items()},
            "seeds": len(radar.seeds), "feedback": dict(sorted(feedback.items())),
        }, ensure_ascii=False))
        return
    lines = [f"radar {radar.name} (id {radar.id})"]
    if radar.interest:
        lines.append(f"interest: {radar.interest}")
    for kind, label in _RULE_OPTIONS:
        if radar.rules.get(kind):
            lines.append(f"{label}: " + "; ".join(r.value for r in radar.rules[kind]))
    lines.append(f"seeds: {len(radar.seeds)}")
    detail = ", ".join(f"{n} {action.replace('_', '-')}" for action, n in sorted(feedback.items()))
    lines.append(f"feedback: {len(radar.feedback)}" + (f" ({detail})" if detail else ""))
    for line in lines:
        _cli.out.print(line)


@radar_app.command("list")
def radar_list() -> None:
    """Every radar of the user (--user, else the single account or the local user), with how many
    rules, seeds and feedback each holds."""
    from .store.radars import default_user_id, list_radars

    try:
        hub = _cli._user_hub()
        with hub.reading() as conn:
            owner = default_user_id(conn)
            radars = list_radars(conn, owner) if owner is not None else []
    except AcademicHubError as exc:
        _cli._fail(exc)
    if not radars:
        _cli.out.print("no radars yet: `academichub radar create NAME --author …`")
        return
    table = text_table(f"{len(radars)} radars", [
        (column, {"overflow": "fold", "justify": "right" if column in ("id", "rules", "seeds", "feedback") else "left"})
        for column in ("id", "name", "rules", "seeds", "feedback", "interest")
    ])
    for r in radars:
        add_text_row(table, r.id, r.name, r.rules, r.seeds, r.feedback, (r.interest or "")[:60])
    _cli.out.print(table)


@radar_app.command("delete")
def radar_delete(name: NameArg) -> None:
    """Delete a radar with its rules, seeds and feedback (the papers stay)."""
    from .store.radars import delete_radar, require_radar

    try:
        hub = _cli._user_hub()
        with hub.writing() as conn:
            delete_radar(conn, require_radar(conn, name))
    except AcademicHubError as exc:
        _cli._fail(exc)
    _cli.out.print(f"radar {name!r} deleted")


@radar_app.command("reset")
def radar_reset(name: NameArg) -> None:
    """Forget the radar's feedback; its rules, seeds and interest stay."""
    from .store.radars import require_radar, reset_learning

    try:
        hub = _cli._user_hub()
        with hub.writing() as conn:
            removed = reset_learning(conn, require_radar(conn, name))
    except AcademicHubError as exc:
        _cli._fail(exc)
    _cli.out.print(f"radar {name!r}: forgot {removed} feedback; rules and seeds kept")


__all__ = ["papers_import_command", "radar_app"]
