"""Export round trips on real papers: a store built from the recorded data (the sample arXiv day,
Crossref and PubMed responses, real BibTeX libraries with TeX), every paper exported as BibTeX,
RIS and CSL-JSON and read back by our own importer, field by field, exactly; the same files read
by bibtexparser and rispy; and `academichub export` as a user runs it.

What a format cannot carry is listed, not hidden: a keyword holding a comma or semicolon (every
format separates keywords so), and in RIS an author name holding a comma (RIS writes "Family,
Given"), a URL holding ";" (rispy splits UR there) and a book's venue (our reader ignores it); in RIS
and CSL-JSON a title or abstract holding both "&" and something like a tag (the reader takes it
for markup)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import bibtexparser
import pytest
import rispy
from sqlalchemy import select

from academichub.export import formats
from academichub.export.records import load_records
from academichub.ingest.library_import import import_library, parse_library
from academichub.ingest.pipeline import ingest_file, load_sample_if_empty
from academichub.store.database import open_store
from academichub.store.schema import papers
from cli_support import academichub_script, script_env

LIBRARIES = ("7brunner--SysRiskWelfare.bib", "wisemanp--DES-SN-Galactic-Rates.bib", "AhmedThahir--Zotero_Database.bib",
             "fbcotter--thesis.bib", "El3ssar--zotero-bib.bib")


@pytest.fixture(scope="module")
def records(module_database_url, shared_data):
    engine = open_store(module_database_url)
    assert load_sample_if_empty(engine).added == 1504
    for path in [*sorted((shared_data / "crossref").glob("cr_works-[0-8].json")), *sorted((shared_data / "pubmed").glob("*.xml"))]:
        ingest_file(engine, path, worker=False)
    for name in LIBRARIES:
        import_library(engine, shared_data / "libraries" / name)
    with engine.connect() as conn:
        found = load_records(conn, conn.execute(select(papers.c.id).order_by(papers.c.id)).scalars())
    engine.dispose()
    return found


def expected(record, fmt: str) -> dict:
    """What the importer must read back: the record's fields, as the format names them."""
    work = formats.kind(record)
    venue = None if work == "preprint" or (fmt == "ris" and work == "book") else record.venue
    return {
        "title": record.title, "abstract": record.abstract, "authors": record.authors, "arxiv_id": record.arxiv_id,
        "doi": formats._doi(record), "pmid": record.pmid, "pmcid": record.pmcid, "venue": venue, "url": record.url,
        "published": record.published, "work_type": work, "publisher": record.publisher, "issn": record.issn,
        "keywords": record.keywords,
    }


def read_back(paper) -> dict:
    return {
        "title": paper.title, "abstract": paper.abstract, "authors": [a.name for a in paper.authors],
        "arxiv_id": paper.arxiv_id, "doi": paper.doi, "pmid": paper.pmid, "pmcid": paper.pmcid, "venue": paper.venue,
        "url": paper.url_abs, "published": paper.published, "work_type": paper.work_type, "publisher": paper.publisher,
        "issn": paper.issns[0] if paper.issns else None, "keywords": paper.keywords,
    }


def carried(record, fmt: str) -> bool:
    """False for the records holding something the format cannot carry (the module docstring)."""
    if any(re.search(r"[;,]", k) for k in record.keywords) or (record.doi and re.search(r"\s", record.doi)):
        return False
    if fmt != "bibtex" and any("&" in text and re.search(r"<[a-z]", text) for text in (record.title, record.abstract)):
        return False  # RIS and CSL text holding "&" and a tag is read as markup (entities and tags undone)
    if fmt == "ris" and (any("," in a for a in record.authors) or ";" in (record.url or "")
                         or (record.url and "pubmed" in record.url and record.pmid and record.pmid not in record.url)):
        return False
    return True


def test_the_store_holds_the_hard_cases(records):
    """The round trip below is only as good as what it carries: TeX math, accents and CJK, long
    author lists, every identifier, venues, abstracts with markup from the upstreams."""
    assert len(records) == 3880
    assert sum("$" in r.title for r in records) == 161
    assert sum("$" in r.abstract for r in records) == 892
    assert sum(any(ord(ch) > 127 for ch in r.title + "".join(r.authors)) for r in records) == 710
    assert max(len(r.authors) for r in records) == 314
    assert (sum(bool(r.doi) for r in records), sum(bool(r.arxiv_id) for r in records)) == (1721, 2386)
    assert (sum(bool(r.pmid) for r in records), sum(bool(r.venue) for r in records)) == (49, 1776)
    assert (sum(bool(r.keywords) for r in records), sum(bool(r.publisher) for r in records)) == (1140, 781)
    assert sum(any(c in r.title + r.abstract for c in "{}\\_&%#~") for r in records) == 1261
    assert [sum(not carried(r, fmt) for r in records) for fmt in formats.FORMATS] == [2, 9, 4]  # the listed limits


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_every_field_the_importer_reads_survives_export_and_reimport(records, fmt):
    text = formats.render(records, fmt)
    library = parse_library(text.encode(), f"export.{formats.SUFFIXES[fmt]}")
    assert library.skipped == [] and library.merged == 0 and len(library.papers) == len(records)
    keys = formats._unique_keys(records)
    back = {p.source_id.split(":", 1)[1]: p for p in library.papers}
    compared = 0
    for record, key in zip(records, keys):
        if not carried(record, fmt):
            continue
        assert read_back(back[key]) == expected(record, fmt), (fmt, record.id)
        compared += 1
    assert compared == len(records) - {"bibtex": 2, "ris": 9, "csljson": 4}[fmt]


def test_bibtex_reads_the_same_through_bibtexparser(records):
    sample = [r for r in records if carried(r, "bibtex")]
    library = bibtexparser.parse_string(formats.to_bibtex(sample))
    assert len(library.entries) == len(sample) and not library.failed_blocks
    for record, entry in zip(sample, library.entries):
        fields = {f.key: f.value for f in entry.fields}
        assert fields["title"] == "{" + formats.tex_escape(" ".join(record.title.split())) + "}"
        assert fields.get("doi") == formats._doi(record)
        assert fields.get("eprint") == record.arxiv_id
        assert fields.get("archivePrefix") == ("arXiv" if record.arxiv_id else None)
        assert fields.get("pmid") == record.pmid
        assert fields.get("date") == (record.published.isoformat() if record.published else None)
        if record.authors:
            assert len(re.split(r" and (?![^{]*\})", fields["author"])) == len(record.authors)
        assert entry.entry_type == {"preprint": "misc", "journal-article": "article", "proceedings-article": "inproceedings",
                                    "book-chapter": "incollection", "book": "book", "dissertation": "phdthesis",
                                    "report": "techreport", None: "misc"}[formats.kind(record)]


def test_ris_reads_the_same_through_rispy(records):
    sample = [r for r in records if carried(r, "ris")]
    entries = rispy.loads(formats.to_ris(sample))
    assert len(entries) == len(sample)
    for record, entry in zip(sample, entries):
        assert entry["title"] == " ".join(record.title.split())
        assert entry.get("abstract", "") == " ".join(record.abstract.split())
        assert [" ".join(reversed([p.strip() for p in a.split(",", 1)])).strip() for a in entry.get("authors", [])] == record.authors
        assert entry.get("doi") == formats._doi(record)
        assert entry.get("urls", [None])[0] == record.url
        assert entry.get("date") == (record.published.strftime("%Y/%m/%d") if record.published else None)
        assert entry["type_of_reference"] == formats._RIS_TYPES.get(formats.kind(record) or "", "GEN")


def test_csl_json_items_are_what_citeproc_expects(records):
    items = json.loads(formats.to_csljson(records))
    assert len(items) == len(records) and len({i["id"] for i in items}) == len(items)  # keys unique
    by_arxiv = {i.get("note"): i for i in items if i.get("note")}
    item = by_arxiv["arXiv:2411.18027"]
    assert item["type"] == "article" and item["number"] == "arXiv:2411.18027"
    assert item["issued"] == {"date-parts": [[2024, 11, 28]]}
    assert item["author"][:2] == [{"given": "Yang", "family": "Yang"}, {"given": "Aryan Mohammadi", "family": "Pasikhani"}]


def test_tex_escaping_round_trips_the_awkward_titles():
    from academichub.export.records import ExportRecord

    titles = ["Spin {qubits} in } silicon", r"A \emph{first} look at 50% of C# & R_0 ~ 1", r"Nb$_3$Sn and $\{x\}$ sets",
              "Fast -- and --- slow", "图神经网络 for Bal\u00e1zs' $\\mathcal{O}(n^{2})$ bound", "Costs $5 and $6"]
    records = [ExportRecord(id=i, title=t, authors=["Ludwig van Beethoven", "Google, Inc.", "Plato"]) for i, t in enumerate(titles)]
    library = parse_library(formats.to_bibtex(records).encode(), "t.bib")
    assert [p.title for p in library.papers] == titles
    assert [a.name for a in library.papers[0].authors] == ["Ludwig van Beethoven", "Google, Inc.", "Plato"]


def test_the_export_command_writes_saved_liked_and_a_radars_batch(database_url, tmp_path):
    env = script_env(ACADEMICHUB_DATABASE_URL=database_url, ACADEMICHUB_DATA_DIR=str(tmp_path / "data"),
                     ACADEMICHUB_BATCH_SIZE="3")
    sample = Path(__file__).resolve().parents[1] / "src" / "academichub" / "data" / "sample" / "2024-11-28-all-archives.xml"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([academichub_script(), *args], env=env, capture_output=True, text=True, timeout=300)

    assert cli("ingest", str(sample)).returncode == 0
    for args in (("radar", "create", "saved", "--interest", "spin qubits"), ("radar", "feedback", "saved", "2411.18027", "save"),
                 ("radar", "feedback", "saved", "2411.18045", "like")):
        done = cli(*args)
        assert done.returncode == 0, done.stderr
    out = tmp_path / "saved.bib"
    done = cli("export", "saved", "--format", "bibtex", "--output", str(out))
    assert done.returncode == 0 and done.stderr.strip() == f"1 papers as bibtex to {out}"
    assert [p.arxiv_id for p in parse_library(out.read_bytes(), "saved.bib").papers] == ["2411.18027"]
    liked = cli("export", "liked", "--format", "ris")
    assert liked.returncode == 0 and [e.get("urls")[0] for e in rispy.loads(liked.stdout)] == ["https://arxiv.org/abs/2411.18045"]
    batch = cli("export", "radar:saved", "--format", "csljson")  # the radar named "saved", not the list
    assert batch.returncode == 0 and len(json.loads(batch.stdout)) == 3 and batch.stderr.strip() == "3 papers as csljson"
    bad = cli("export", "saved", "--format", "endnote")
    assert bad.returncode == 1 and "unknown export format 'endnote'" in bad.stderr
    missing = cli("export", "radar:nope", "--format", "ris")
    assert missing.returncode == 1 and "no radar 'nope'" in missing.stderr
