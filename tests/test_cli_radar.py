"""`academichub papers import` and `academichub radar …` end to end: Typer's runner, a real store per
test, real libraries from shared/data/libraries."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from academichub import cli
from academichub.cli_radar import papers_import_command, radar_app

BRUNNER = "libraries/7brunner--SysRiskWelfare.bib"


def _app() -> typer.Typer:
    """The real command once cli.py registers these; until then the same pieces, put together here."""
    if any(group.name == "radar" for group in cli.app.registered_groups):
        return cli.app
    app = typer.Typer(pretty_exceptions_enable=False, rich_markup_mode=None)
    app.callback()(cli.main)
    papers = typer.Typer()
    papers.command("import")(papers_import_command)
    app.add_typer(papers, name="papers")
    app.add_typer(radar_app, name="radar")
    return app


@pytest.fixture
def run(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("ACADEMICHUB_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    app = _app()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def test_every_command_has_help(run):
    for command in (["papers", "import"], ["radar"], *(["radar", c] for c in ("create", "seed", "feedback", "show", "list", "delete", "reset"))):
        result = run(*command, "--help")
        assert result.exit_code == 0, (command, result.output)
        assert "Usage:" in result.output


def test_papers_import(run, shared_data, tmp_path):
    path = shared_data / "libraries/DayTimeChunks--HydrologicalMonitoring.bib"
    result = run("papers", "import", str(path))
    assert result.exit_code == 0, result.output
    assert f"{path}: 400 records: 400 added, 0 updated, 0 unchanged, 0 failed, 3 skipped" in result.output
    assert "warning: DayTimeChunks--HydrologicalMonitoring.bib:1867: @incollection{Armstrong1990}: no title, skipped" in result.output
    again = run("papers", "import", str(path))
    assert f"{path}: 400 records: 0 added, 0 updated, 400 unchanged, 0 failed, 3 skipped" in again.output

    missing = run("papers", "import", str(tmp_path / "missing.bib"))
    assert missing.exit_code == 1
    assert f"error: {tmp_path / 'missing.bib'}: cannot read: No such file or directory" in missing.output
    notes = tmp_path / "notes.txt"
    notes.write_text("not a library\n")
    refused = run("papers", "import", str(notes))
    assert refused.exit_code == 1
    assert f"error: {notes}:1: unsupported library format: expected BibTeX, RIS, CSL-JSON or JSON lines" in refused.output


def test_radar_create_seed_feedback_show_reset_delete(run, shared_data):
    created = run(
        "radar", "create", "finance", "--author", "C. Balázs", "--author", "Csaba Balazs", "--keyword", "Systemic risk",
        "--category", "q-fin.RM", "--venue", "PRL", "--mute-author", "Michael Boss", "--interest", "How banks fail together",
    )
    assert created.exit_code == 0, created.output
    assert "radar 'finance' created (id 1) with 5 rules" in created.output
    taken = run("radar", "create", "finance")
    assert taken.exit_code == 1 and "error: a radar named 'finance' already exists" in taken.output
    bad = run("radar", "create", "other", "--keyword", "x", "--category", "qfin")
    assert bad.exit_code == 1 and "error: 'qfin' is not an arXiv category" in bad.output
    assert "other" not in run("radar", "list").output  # all or nothing

    library = shared_data / BRUNNER
    seeded = run("radar", "seed", "finance", str(library))
    assert seeded.exit_code == 0, seeded.output
    assert f"{library}: 88 records: 88 added, 0 updated, 0 unchanged, 0 failed, 0 skipped" in seeded.output
    assert (
        "radar 'finance': 88 new seeds, 88 papers from 7brunner--SysRiskWelfare.bib"
    ) in seeded.output
    again = run("radar", "seed", "finance", str(library))
    assert "radar 'finance': 0 new seeds, 88 papers from 7brunner--SysRiskWelfare.bib" in again.output
    nowhere = run("radar", "seed", "nowhere", str(library))
    assert nowhere.exit_code == 1 and "error: no radar 'nowhere'" in nowhere.output

    liked = run("radar", "feedback", "finance", "cond-mat/0309582", "like")
    assert liked.exit_code == 0, liked.output
    assert "radar 'finance': like on paper" in liked.output
    less = run("radar", "feedback", "finance", "https://doi.org/10.1016/j.jedc.2014.09.041", "less-author", "--value", "Fabio Caccioli")
    assert less.exit_code == 0 and "less-author (Fabio Caccioli) on paper" in less.output
    unknown = run("radar", "feedback", "finance", "10.9999/nothing", "like")
    assert unknown.exit_code == 1 and "error: no paper '10.9999/nothing' in the store" in unknown.output
    wrong = run("radar", "feedback", "finance", "cond-mat/0309582", "love")
    assert wrong.exit_code == 1 and "error: unknown feedback 'love'" in wrong.output

    shown = run("radar", "show", "finance")
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines() == [
        "radar finance (id 1)",
        "interest: How banks fail together",
        "authors: C. Balázs",
        "muted authors: Michael Boss",
        "keywords: Systemic risk",
        "categories: q-fin.RM",
        "venues: PRL",
        "seeds: 88",
        "feedback: 2 (1 less-author, 1 like)",
    ]
    as_json = json.loads(run("radar", "show", "finance", "--format", "json").output)
    assert as_json["rules"]["author"] == [{"value": "C. Balázs", "key": "balazs c", "orcid": None}]
    assert as_json["rules"]["venue"][0]["key"] == "physical review letters"
    assert (as_json["seeds"], as_json["feedback"]) == (88, {"less_author": 1, "like": 1})

    reset = run("radar", "reset", "finance")
    assert reset.exit_code == 0 and "radar 'finance': forgot 2 feedback; rules and seeds kept" in reset.output
    assert "feedback: 0" in run("radar", "show", "finance").output
    assert "seeds: 88" in run("radar", "show", "finance").output

    listed = run("radar", "list")
    assert listed.exit_code == 0 and "finance" in listed.output and "How banks fail together" in listed.output
    deleted = run("radar", "delete", "finance")
    assert deleted.exit_code == 0 and "radar 'finance' deleted" in deleted.output
    gone = run("radar", "show", "finance")
    assert gone.exit_code == 1 and "error: no radar 'finance'" in gone.output
    assert "no radars yet" in run("radar", "list").output
