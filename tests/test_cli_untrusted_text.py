"""Text from outside (titles, names, paths, URLs, upstream error bodies) is printed as text by every
command: Rich never reads it as markup (`[/ITAL]` crashed `papers search`), as an emoji code
(`:abc:` became 🔤) or as something to colour. Driven through the real command (Typer's runner and
the installed `academichub` script in a subprocess) with the real libraries and recorded files;
an upstream error comes from a real local HTTP server."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from academichub import cli
from academichub.cli import app
from academichub.store.schema import papers
from academichub.store.sources import list_sources
from cli_support import PACKAGE, REPO, WIDE, academichub_script, script_env

WISEMANP = "libraries/wisemanp--DES-SN-Galactic-Rates.bib"
# The real title, with the markup of its publisher (the .bib has it inside {{…}}).
ITAL_TITLE = ("[ITAL]Hubble Space Telescope[/ITAL] and Palomar Imaging of GRB 990123: Implications for the Nature "
              "of Gamma-Ray Bursts and Their Hosts")
ABC_EMOJI = "\N{INPUT SYMBOL FOR LATIN LETTERS}"  # what Rich makes of ":abc:"


@pytest.fixture
def run(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("ACADEMICHUB_DATA_DIR", str(tmp_path / "data"))
    # Wide enough that a table row (and its title cell) stays on one line. Rich fixes the width when
    # the console is made if COLUMNS is set then (pytest-xdist sets it to 80), so set it directly.
    monkeypatch.setattr(cli.out, "_width", int(WIDE))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def wisemanp(run, shared_data):
    result = run("papers", "import", str(shared_data / WISEMANP))
    assert result.exit_code == 0, result.output
    return result


def test_search_and_list_print_a_title_with_closing_tags_literally(run, wisemanp):
    found = run("papers", "search", "GRB 990123")
    assert found.exit_code == 0, found.output
    assert ITAL_TITLE in found.output
    listed = run("papers", "list", "--limit", "2000")
    assert listed.exit_code == 0, listed.output
    assert ITAL_TITLE in listed.output
    assert "877 papers" in listed.output


def test_show_prints_the_title_literally(run, wisemanp):
    item = json.loads(run("papers", "search", "GRB 990123", "--format", "json").stdout)["items"][0]
    shown = run("papers", "show", str(item["id"]))
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[0] == ITAL_TITLE


def test_the_installed_script_searches_the_real_library(database_url, shared_data, tmp_path):
    """The real `academichub` process, as a user runs it (no test runner in between)."""
    env = script_env(ACADEMICHUB_DATABASE_URL=database_url, ACADEMICHUB_DATA_DIR=str(tmp_path / "data"))
    script = academichub_script()
    imported = subprocess.run([script, "papers", "import", str(shared_data / WISEMANP)], env=env,
                              capture_output=True, text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr
    found = subprocess.run([script, "papers", "search", "GRB 990123"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert found.returncode == 0, found.stderr
    assert ITAL_TITLE in found.stdout
    assert "MarkupError" not in found.stderr


def test_sources_status_and_list_show_an_error_body_with_markup(run, engine, local_server, monkeypatch):
    """A feed answers 404 with `[/]` and `:abc:` in its body; the error stored on the source row
    is shown by `sources status` as it is, and `sources list` still works."""
    monkeypatch.setenv("ACADEMICHUB_ALLOW_PRIVATE_URLS", "true")  # the feed is on 127.0.0.1
    local_server.route("/feed.xml", status=404, body=b"<html>Not here [/] :abc: [/ITAL]</html>",
                       headers={"Content-Type": "text/html"})
    name = "lab[/ITAL]:abc:"
    added = run("sources", "add", "feed", name, "--param", f"url={local_server.url('/feed.xml')}")
    assert added.exit_code == 0, added.output
    ran = run("sources", "run", name)
    assert ran.exit_code == 1, ran.output
    with engine.connect() as conn:
        (row,) = list_sources(conn)
    error = row["last_error"]
    assert "[/]" in error and ":abc:" in error  # the body is what the row keeps
    assert f"error: {name}: {error}" in ran.output
    status = run("sources", "status")
    assert status.exit_code == 0, status.output
    assert error in status.output
    assert name in status.output
    listed = run("sources", "list")
    assert listed.exit_code == 0, listed.output
    assert name in listed.output
    assert ABC_EMOJI not in status.output + listed.output + ran.output


def test_allow_private_urls_is_a_flag_of_sources_add_and_run(run, engine, local_server, shared_data):
    """Documented in docs/settings.md, so a real flag: without it a feed on 127.0.0.1 is refused."""
    day = (shared_data / "arxiv/rss/2024-11-28-all-archives.xml").read_bytes()
    local_server.route("/feed.xml", body=day, headers={"Content-Type": "application/rss+xml"})
    url = local_server.url("/feed.xml")
    refused = run("sources", "add", "feed", "lab", "--param", f"url={url}")
    assert refused.exit_code == 1
    assert refused.output.startswith("error: ")
    assert run("sources", "add", "feed", "lab", "--param", f"url={url}", "--allow-private-urls").exit_code == 0
    assert run("sources", "run", "lab").exit_code == 1  # the run checks the address again
    ran = run("sources", "run", "lab", "--allow-private-urls")
    assert ran.exit_code == 0, ran.output
    assert "lab: 1504 records: 1504 added" in ran.output


def test_ingest_reports_a_path_with_brackets_and_goes_on(run, engine, shared_data, tmp_path):
    folder = tmp_path / "dir["
    folder.mkdir()
    (folder / "x]bad.xml").write_text("not a feed\n")
    bad = f"{tmp_path}/dir[/x]bad.xml"
    missing = f"{tmp_path}/nowhere[/x]gone.xml"
    good = str(shared_data / "arxiv/oai-quant-ph/arXiv-meta-1995.xml")
    bracketed = folder / "x] :abc: [b].xml"  # a recorded file under a name full of markup
    shutil.copy(shared_data / "arxiv/oai-quant-ph/arXiv-meta-2000.xml", bracketed)
    result = run("ingest", bad, missing, good, str(bracketed))
    assert result.exit_code == 1, result.output
    assert f"error: {bad}" in result.output
    assert f"error: {missing}" in result.output
    assert f"{good}: 436 records: 436 added" in result.output
    assert f"{bracketed}: " in result.output
    assert ABC_EMOJI not in result.output
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(papers)).scalar_one()
    assert stored > 436  # both good files, whatever their names


def test_a_warning_shows_colon_codes_literally(run, shared_data, tmp_path):
    folder = tmp_path / "lib["
    folder.mkdir()
    library = folder / "x] :abc:.bib"
    shutil.copy(shared_data / WISEMANP, library)
    result = run("papers", "import", str(library))
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert warnings and all(line.startswith("warning: x] :abc:.bib:") for line in warnings), warnings
    assert f"{library}: 877 records: 877 added" in result.output
    assert ABC_EMOJI not in result.output


def test_radar_names_print_literally(run):
    name = "GRB [/ITAL] :abc:"
    created = run("radar", "create", name, "--keyword", "[bold]burst[/bold]", "--interest", "[red]x[/] :abc:")
    assert created.exit_code == 0, created.output
    listed = run("radar", "list")
    assert listed.exit_code == 0, listed.output
    assert name in listed.output and "[red]x[/] :abc:" in listed.output
    shown = run("radar", "show", name)
    assert "keywords: [bold]burst[/bold]" in shown.output
    ranked = run("rank", name)
    assert ranked.exit_code == 0, ranked.output
    assert f"{name}: 0 papers" in ranked.output
    assert ABC_EMOJI not in listed.output + shown.output + ranked.output


def test_an_error_message_with_markup_is_one_plain_line(run):
    result = run("papers", "show", "[/x] :abc:")
    assert result.exit_code == 1
    assert result.output == "error: no paper '[/x] :abc:' in the store\n"


def test_terminal_escapes_from_outside_are_shown_not_obeyed(run):
    """An ESC sequence in a name (here: recolour, and set the window title) prints as visible text."""
    name = "evil \x1b[31mred\x1b]0;owned\x07 name"
    created = run("radar", "create", name, "--interest", "x\x1b[2J")
    assert created.exit_code == 0, created.output
    listed = run("radar", "list")
    assert listed.exit_code == 0, listed.output
    assert "\x1b" not in listed.output and "\x07" not in listed.output
    assert "evil \\x1b[31mred\\x1b]0;owned\\x07 name" in listed.output
    assert "x\\x1b[2J" in listed.output


# ----------------------------------------------------------------------------- no way back


def test_every_console_is_the_plain_one():
    """Rich output goes through academichub.terminal only: no other Console, markup-reading column,
    rich.print or markup string can come back into the CLI."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "terminal.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                called = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if called in ("Console", "TextColumn", "Progress", "from_markup", "render_markup"):
                    offenders.append(f"{where}: {called}()")
                if any(k.arg in ("markup", "emoji", "highlight") for k in node.keywords):
                    offenders.append(f"{where}: a per-call markup/emoji/highlight switch")
            elif isinstance(node, ast.ImportFrom) and node.module == "rich" and any(a.name == "print" for a in node.names):
                offenders.append(f"{where}: rich.print")
            elif isinstance(node, ast.ImportFrom) and node.module == "rich.markup":
                offenders.append(f"{where}: rich.markup (escape() here and there instead of plain consoles)")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if any(tag in node.value for tag in ("[bold", "[/]", "[yellow", "[red", "[green", "[dim", "[/bold")):
                    offenders.append(f"{where}: markup in a string")
    assert not offenders, offenders
