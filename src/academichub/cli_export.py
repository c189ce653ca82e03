"""`academichub export saved|liked|RADAR --format bibtex|ris|csljson [--output FILE]`: the reading
list, the liked papers (of `--radar`, or of every radar) or a radar's current batch as a reference
library; `export saved --zotero` pushes the reading list to the linked Zotero library instead.

"saved" and "liked" are the lists; any other word is a radar's name (or id). A radar that is
itself named "saved" or "liked" is reached as `radar:saved` (the prefix always names a radar).
Registered by cli.py; the shared helpers are looked up on the cli module when the command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import cli as _cli
from .errors import AcademicHubError
from .terminal import warning_line


def _local_user(hub) -> int | None:
    from .store.radars import default_user_id

    with hub.reading() as conn:
        return default_user_id(conn)


@_cli.setting_flags("zotero_api_url")
def export_command(
    what: Annotated[str, typer.Argument(help="saved, liked, or a radar's name or id (radar:NAME when the radar is "
                                             "named saved or liked): its current batch.", show_default=False)],
    fmt: Annotated[str, typer.Option("--format", help="bibtex, ris or csljson.")] = "bibtex",
    output: Annotated[Optional[Path], typer.Option("--output", help="Write to this file (default: standard output).")] = None,
    radar: Annotated[Optional[str], typer.Option("--radar", help="With liked: only this radar's likes.")] = None,
    zotero: Annotated[bool, typer.Option("--zotero", help="With saved: push the papers not pushed yet to the linked "
                                                          "Zotero library (set on /settings/zotero).")] = False,
    push_all: Annotated[bool, typer.Option("--all", help="With --zotero: push every saved paper again.")] = False,
) -> None:
    """Export saved papers, liked papers or a radar's batch as BibTeX, RIS or CSL-JSON."""
    from .app import saved

    try:
        hub = _cli._user_hub()
        user_id = _local_user(hub)
        if zotero:
            if what != "saved":
                raise AcademicHubError("--zotero pushes the reading list: use `export saved --zotero`")
            if user_id is None:
                _cli.out.print("nothing saved yet")
                return
            report = saved.push_to_zotero(hub, user_id, all_papers=push_all)
            for paper_id, message in report.failed[:10]:
                _cli.console.print(warning_line(f"paper {paper_id}: {message}"))
            _cli.out.print(f"Zotero: {report.line()}")
            if report.failed:
                raise typer.Exit(1)
            return
        if radar is not None and what != "liked":
            raise AcademicHubError("--radar goes with liked (a radar's batch: `export RADAR`)")
        result = saved.export(hub, user_id, what, fmt, radar=radar)
        if output is None:
            _cli.out.file.write(result.text)
            _cli.out.file.flush()
        else:
            try:
                output.write_text(result.text, encoding="utf-8")
            except OSError as exc:
                raise AcademicHubError(f"{output}: cannot write: {exc.strerror}") from exc
        _cli.console.print(f"{result.count} papers as {result.format}" + (f" to {output}" if output else ""))
    except AcademicHubError as exc:
        _cli._fail(exc)
