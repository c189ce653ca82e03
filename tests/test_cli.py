"""The `academichub` command end to end (Typer's runner, a real store per test)."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from academichub.cli import app
from academichub.store.schema import papers
from cli_support import PACKAGE, REPO, academichub_script, script_env


@pytest.fixture
def run(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("ACADEMICHUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ACADEMICHUB_CONFIG", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def test_every_command_has_help(run):
    for command in (
        [], ["serve"], ["ingest"], ["backfill"], ["import-snapshot"], ["papers"], ["papers", "list"],
        ["papers", "show"], ["papers", "search"], ["papers", "import"], ["db"], ["db", "upgrade"], ["db", "check"],
        ["bench"], ["bench", "ingest"], ["bench", "merge"], ["bench", "sources"], ["bench", "briefing"], ["sources"], ["sources", "add"],
        ["sources", "run"], ["sources", "list"], ["sources", "status"], ["sources", "remove"], ["sources", "import-opml"],
        ["radar"], ["radar", "create"], ["radar", "seed"], ["radar", "feedback"], ["radar", "show"], ["radar", "list"],
        ["radar", "delete"], ["radar", "reset"], ["digest"], ["digest", "send"],
    ):
        result = run(*command, "--help")
        assert result.exit_code == 0, (command, result.output)
        assert "Usage:" in result.output


def test_ingest_reports_one_line_per_input_and_a_total(run, shared_data):
    day = str(shared_data / "arxiv/rss/2024-11-28-all-archives.xml")
    result = run("ingest", day)
    assert result.exit_code == 0, result.output
    assert f"{day}: 1504 records: 1504 added, 0 updated, 0 unchanged, 0 failed" in result.output
    assert "total: 1504 records: 1504 added, 0 updated, 0 unchanged, 0 failed" in result.output
    again = run("ingest", day)
    assert "total: 1504 records: 0 added, 0 updated, 1504 unchanged, 0 failed" in again.output


def _candidates_manifest(data: Path) -> dict:
    return json.loads(next((data / "index" / "candidates").glob("candidates-" + "?" * 16 + ".json")).read_text())


def test_ingest_leaves_the_candidate_files_current_for_the_first_rank(run, shared_data, tmp_path):
    data = tmp_path / "data"
    result = run("ingest", "--no-embed-on-ingest", str(shared_data / "arxiv/oai-quant-ph/arXiv-meta-1995.xml"))
    assert result.exit_code == 0, result.output
    assert "candidate files: 436 papers (" in result.output
    assert {k: _candidates_manifest(data)[k] for k in ("generation", "count", "vectors")} == \
        {"generation": 1, "count": 436, "vectors": {}}
    assert run("radar", "create", "qubits", "--keyword", "qubit").exit_code == 0
    ranked = run("rank", "qubits", "--limit", "3")
    assert ranked.exit_code == 0, ranked.output
    assert _candidates_manifest(data)["generation"] == 1  # the rank mapped them and wrote nothing
    day = str(shared_data / "arxiv/rss/2024-11-28-all-archives.xml")
    appended = run("ingest", "--no-embed-on-ingest", day)
    assert "candidate files: 1,940 papers (" in appended.output
    assert {k: _candidates_manifest(data)[k] for k in ("generation", "count")} == {"generation": 2, "count": 1940}
    unchanged = run("ingest", "--no-embed-on-ingest", day)  # nothing added: nothing to append
    assert "candidate files" not in unchanged.output and _candidates_manifest(data)["generation"] == 2


def test_ingest_without_candidate_files(run, shared_data, tmp_path):
    result = run("ingest", "--no-embed-on-ingest", "--no-candidates-on-ingest",
                 str(shared_data / "arxiv/oai-quant-ph/arXiv-meta-1995.xml"))
    assert result.exit_code == 0, result.output
    assert "candidate files" not in result.output and not (tmp_path / "data" / "index" / "candidates").exists()


def test_a_bad_input_fails_the_run_but_not_the_others(run, shared_data, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a feed\n")
    good = str(shared_data / "arxiv/oai-quant-ph/arXiv-meta-1995.xml")
    result = run("ingest", str(bad), good)
    assert result.exit_code == 1
    assert f"error: {bad}:1: unsupported format" in result.output
    assert f"{good}: 436 records: 436 added" in result.output
    assert "total: 436 records: 436 added, 0 updated, 0 unchanged, 1 failed" in result.output


def test_bad_category_is_refused_before_any_request(run):
    result = run("ingest", "--feed", "astroph")
    assert result.exit_code == 1
    assert "bad archive or category name 'astroph'" in result.output


def test_import_snapshot_and_papers_commands(run, shared_data):
    result = run("import-snapshot", str(shared_data / "arxiv/snapshot/arxiv-metadata-oai-snapshot-head.jsonl"))
    assert result.exit_code == 0, result.output
    assert "200 records: 200 added" in result.output
    assert "candidate files: 200 papers (" in result.output  # appended after the import, as `ingest` does
    shown = run("papers", "show", "0704.0001", "--format", "json")
    assert shown.exit_code == 0, shown.output
    paper = json.loads(shown.output)
    assert paper["title"].startswith("Calculation of prompt diphoton production cross sections")
    assert paper["authors"][0]["name"] == "C. Balázs"
    listed = run("papers", "list", "--author", "C. Balázs", "--format", "json")
    assert [p["arxiv_id"] for p in json.loads(listed.output)["items"]] == ["0704.0001"]
    found = run("papers", "search", "diphoton", "--format", "json")
    assert "0704.0001" in [p["arxiv_id"] for p in json.loads(found.output)["items"]]
    missing = run("papers", "show", "9999.99999")
    assert missing.exit_code == 1 and "no paper '9999.99999'" in missing.output


def test_import_snapshot_refuses_xml(run, shared_data):
    result = run("import-snapshot", str(shared_data / "arxiv/rss/empty.xml"))
    assert result.exit_code == 1
    assert "not a snapshot JSON-lines file" in result.output


def test_db_upgrade_and_check(run):
    from academichub.store.database import head_revision

    assert f"database at revision {head_revision()}" in run("db", "upgrade").output
    check = run("db", "check")
    assert check.exit_code == 0 and "schema matches" in check.output


def test_open_store_knows_the_head_and_still_upgrades_an_older_database(engine):
    from alembic import command

    from academichub.store.database import (
        HEAD_REVISION, _alembic_config, current_revision, head_revision, open_store,
    )

    assert HEAD_REVISION == head_revision()  # a new migration must move HEAD_REVISION too
    with engine.begin() as connection:
        command.downgrade(_alembic_config(connection), "0002")
    assert current_revision(engine) == "0002"
    reopened = open_store(engine.url.render_as_string(hide_password=False))
    assert current_revision(reopened) == HEAD_REVISION
    reopened.dispose()


def test_upgrading_past_a_table_rebuild_keeps_the_rows_that_reference_it(engine):
    """0007 rebuilds `users` on SQLite (copy, DROP, rename): with foreign keys enforced the DROP
    cascaded and every radar was gone after the upgrade."""
    from alembic import command

    from academichub.store.database import _alembic_config, open_store

    with engine.begin() as connection:
        command.downgrade(_alembic_config(connection), "0006")
        connection.exec_driver_sql("INSERT INTO users (name, created_at) VALUES ('alice', '2024-11-28 09:00:00')")
        connection.exec_driver_sql("INSERT INTO radars (user_id, name, settings, created_at, updated_at) "
                                   "SELECT id, 'r', '{}', created_at, created_at FROM users")
    reopened = open_store(engine.url.render_as_string(hide_password=False))
    with reopened.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM radars").scalar_one() == 1
    reopened.dispose()


def test_bad_database_url_is_one_line(run, monkeypatch):
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", "mysql://nobody@localhost/x")
    result = run("db", "check")
    assert result.exit_code == 1
    assert "error:" in result.output


def test_ingest_detects_every_upstream_format(run, shared_data):
    files = {
        "pubmed/pubmed2.xml": None, "pubmed/efetch_pmc.xml": None, "crossref/cr_works-10.json": None,
        "openalex/W2741809807.json": None, "semanticscholar/test_search_paper_next_page-0.json": None,
    }
    result = run("ingest", *(str(shared_data / name) for name in files))
    assert result.exit_code == 0, result.output
    for name in files:
        assert f"{shared_data / name}: " in result.output
    assert ", 0 failed" in next(line for line in result.output.splitlines() if line.startswith("total: "))


@pytest.mark.parametrize("flag", ["--ingest-worker", "--no-ingest-worker"])
def test_bulk_files_through_the_parsing_worker_or_not(run, shared_data, tmp_path, monkeypatch, flag):
    from academichub.ingest import pipeline

    forks = []
    real_start = pipeline.ParsingWorker.start
    monkeypatch.setattr(pipeline, "worker_available", lambda force=None: force is not False)

    def start(self):
        if self._process is None:
            forks.append(self.paths)
        real_start(self)

    monkeypatch.setattr(pipeline.ParsingWorker, "start", start)
    oai = shared_data / "arxiv/oai-quant-ph"
    cut = tmp_path / "cut.xml"
    cut.write_bytes((oai / "arXiv-meta-2000.xml").read_bytes()[:100_000])
    files = [str(oai / "arXiv-meta-1995.xml"), str(cut), str(shared_data / "arxiv/rss/2024-11-28-all-archives.xml")]
    result = run("ingest", flag, *files)
    assert result.exit_code == 1
    assert f"{files[0]}: 436 records: 436 added" in result.output
    assert f"error: {cut}:" in result.output
    assert "total: 1940 records: 1940 added, 0 updated, 0 unchanged, 1 failed" in result.output
    # one worker for the two bulk files (the RSS day is parsed in-process), forked once
    assert forks == ([[files[0], str(cut)]] if flag == "--ingest-worker" else [])


# ----------------------------------------------------------------------------- inputs none of whose records could be stored


def _without_titles(shared_data: Path, target: Path) -> Path:
    """The recorded snapshot head with every title taken out: JSON lines none of which is a paper."""
    with open(shared_data / "arxiv/snapshot/arxiv-metadata-oai-snapshot-head.jsonl", encoding="utf-8") as source:
        lines = [json.loads(line) for line in source if line.strip()]
    target.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "title"}) + "\n" for r in lines))
    return target


def test_ingest_fails_when_every_record_of_an_input_failed(run, engine, shared_data, tmp_path):
    junk = _without_titles(shared_data, tmp_path / "junk.jsonl")
    good = str(shared_data / "arxiv/oai-quant-ph/arXiv-meta-1995.xml")
    result = run("ingest", str(junk), good)
    assert result.exit_code == 1, result.output
    assert f"error: {junk}: every one of its 200 records failed; nothing was stored from it" in result.output
    assert f"{good}: 436 records: 436 added" in result.output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(papers)).scalar_one() == 436


def test_import_snapshot_fails_when_every_record_failed(run, engine, shared_data, tmp_path):
    junk = _without_titles(shared_data, tmp_path / "junk.jsonl")
    result = run("import-snapshot", str(junk))
    assert result.exit_code == 1, result.output
    assert f"error: {junk}: every one of its 200 records failed; nothing was stored from it" in result.output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(papers)).scalar_one() == 0


def test_papers_import_fails_when_every_entry_is_skipped(run, engine, shared_data, tmp_path):
    """Only the two entries of the real wisemanp library that have no title: nothing to import."""
    text = (shared_data / "libraries/wisemanp--DES-SN-Galactic-Rates.bib").read_text(encoding="utf-8")
    entries = [text[text.index(key) : text.index("\n@", text.index(key)) + 1]
               for key in ("@article{Diehl2018,", "@article{Swann2020,")]
    library = tmp_path / "untitled.bib"
    library.write_text("".join(entries), encoding="utf-8")
    result = run("papers", "import", str(library))
    assert result.exit_code == 1, result.output
    assert f"error: {library}: every one of its 2 entries failed; nothing was stored from it" in result.output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(papers)).scalar_one() == 0


# ----------------------------------------------------------------------------- the package stands alone


def test_bench_briefing_runs_outside_a_checkout(tmp_path):
    """The package as pip installs it (no benchmarks/ or tests/ beside it), run from elsewhere."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "academichub", ignore=shutil.ignore_patterns("__pycache__"))
    env = script_env(PYTHONPATH=str(site), ACADEMICHUB_DATA_DIR=str(tmp_path / "data"))
    result = subprocess.run([academichub_script(), "bench", "briefing", "--rounds", "1", "--vectors", "lsa"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "embeddings: bench-lsa (stored, float16)" in result.stdout
    assert "analysis + extractive briefing, 40 papers, en: " in result.stdout
    assert "LLM briefing, zh: " in result.stdout


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" and node.args:
            if isinstance(node.args[0], ast.Constant):
                names.add(str(node.args[0].value))
    return names


def test_the_package_imports_nothing_from_the_checkout():
    offenders = sorted(
        f"{path.relative_to(REPO)}: {name}" for path in PACKAGE.rglob("*.py") for name in _imports(path)
        if name.split(".")[0] in ("benchmarks", "tests", "fake_openai", "localserver")
    )
    assert not offenders, offenders
