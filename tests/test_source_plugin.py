"""Adding a source touches one module: tests/jsonl_source.py declares a JSON-lines upstream, an
entry point in the `academichub.sources` group (a dist-info folder on PYTHONPATH, as pip would
install it) names it, and the real `academichub` script lists it, adds it, runs it against a
local server serving works taken from a recorded Crossref answer, stores its papers under its
label, and detects its format in `ingest` — with no edit anywhere in the package."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from cli_support import academichub_script, script_env
from sqlalchemy import select

from academichub.store.database import open_store
from academichub.store.schema import papers

TESTS = Path(__file__).resolve().parent
CROSSREF_PAGE = "crossref/cr_journals_issn_workstrue_behavior-2.json"  # FEMS Microbiology Ecology, 20 works


def _jsonl_from_recorded_crossref(shared_data: Path) -> tuple[bytes, set[str]]:
    """The recorded Crossref works with a title, one JSON line each, in the extra upstream's shape."""
    items = json.loads((shared_data / CROSSREF_PAGE).read_bytes())["message"]["items"]
    lines = [
        {"hub_work": 1, "doi": item["DOI"], "title": item["title"][0],
         "authors": [f"{a.get('given', '')} {a['family']}".strip() for a in item.get("author", []) if a.get("family")]}
        for item in items if item.get("title")
    ]
    return b"\n".join(json.dumps(line).encode() for line in lines) + b"\n", {line["doi"].lower() for line in lines}


def _install_entry_point(site: Path) -> None:
    """What `pip install` of a distribution declaring the entry point leaves on sys.path."""
    info = site / "academichub_jsonl_source-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: academichub-jsonl-source\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[academichub.sources]\njsonl = jsonl_source\n")


def test_a_source_from_its_own_module_is_added_run_and_stored(tmp_path, database_url, local_server, shared_data):
    body, dois = _jsonl_from_recorded_crossref(shared_data)
    local_server.route("/works.jsonl", body=body, headers={"Content-Type": "application/x-ndjson"})
    site = tmp_path / "site"
    _install_entry_point(site)
    env = script_env(
        PYTHONPATH=os.pathsep.join([str(TESTS.parent / "src"), str(site), str(TESTS)]),
        ACADEMICHUB_DATABASE_URL=database_url, ACADEMICHUB_DATA_DIR=str(tmp_path / "data"), ACADEMICHUB_HTTP_RETRIES="0",
    )

    def academichub(*args: str) -> str:
        result = subprocess.run([academichub_script(), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    assert re.search(r"│ jsonl +│ JSON lines +│ url\* +│ where the JSON lines are served", academichub("sources", "kinds"))
    url = local_server.url("/works.jsonl")
    assert f"added fems-lines (jsonl {{'url': '{url}'}})" in " ".join(academichub(
        "sources", "add", "jsonl", "fems-lines", "--param", f"url={url}"
    ).split())
    ran = " ".join(academichub("sources", "run", "fems-lines").split())
    assert f"fems-lines: {len(dois)} records: {len(dois)} added, 0 updated, 0 unchanged, 0 failed" in ran
    assert [path for path, _ in local_server.requests] == ["/works.jsonl"]

    engine = open_store(database_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(papers.c.doi, papers.c.origin)).all()
    finally:
        engine.dispose()
    assert {doi for doi, _ in stored} == dois and {origin for _, origin in stored} == {"jsonl"}

    listed = json.loads(academichub("papers", "list", "--limit", "100", "--format", "json"))
    assert {item["source_label"] for item in listed["items"]} == {"JSON lines"}  # the kind's label on its cards

    # `ingest` detects the new format by the kind's sniffer: the same works, unchanged
    copy = tmp_path / "works.jsonl"
    copy.write_bytes(body)
    ingested = " ".join(academichub("ingest", str(copy)).split())
    assert f"{len(dois)} records: 0 added, 0 updated, {len(dois)} unchanged, 0 failed" in ingested


def test_a_plugin_that_cannot_be_loaded_is_named(tmp_path):
    """A broken plugin is an error naming it, not a source that silently went missing."""
    info = tmp_path / "site" / "academichub_broken-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: academichub-broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[academichub.sources]\nbroken = no_such_module_anywhere\n")
    env = script_env(PYTHONPATH=os.pathsep.join([str(TESTS.parent / "src"), str(tmp_path / "site")]))
    result = subprocess.run([academichub_script(), "sources", "kinds"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: source plugin 'broken' (no_such_module_anywhere) cannot be loaded: No module named" in " ".join(
        (result.stdout + result.stderr).split()
    )
