"""Reference libraries in: the ten real personal BibTeX libraries in shared/data/libraries (with their
broken entries, reused keys and duplicates), RIS, CSL-JSON (Crossref's recorded citeproc-json) and
JSON lines (the recorded arXiv snapshot), then into a real store."""

from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from pathlib import Path

import pytest
from sqlalchemy import func, select

from academichub.errors import ParseError
from academichub.ingest.library_import import (
    LibraryImport,
    detect_library_format,
    import_library,
    imported_paper_ids,
    read_library,
    tex_text,
)
from academichub.store.schema import paper_identifiers, papers, source_records

# file: (entries in the file, papers after merging duplicates, papers with an abstract,
#        entries skipped, papers with no DOI / arXiv id / PMID / PMCID / URL)
EXPECTED = {
    "7brunner--SysRiskWelfare.bib": (106, 88, 56, 0, 22),
    "AhmedThahir--Zotero_Database.bib": (42, 42, 35, 0, 19),
    "AurinaBMH--PHDthesisLatex.bib": (933, 892, 704, 3, 31),
    "DayTimeChunks--HydrologicalMonitoring.bib": (416, 400, 266, 3, 103),
    "El3ssar--zotero-bib.bib": (680, 679, 440, 0, 129),
    "NiklasTR--thesis.bib": (1060, 1045, 942, 0, 75),
    "corinalogan--grackles.bib": (726, 678, 516, 0, 103),
    "fbcotter--thesis.bib": (646, 618, 483, 1, 86),
    "ryanboyd--References.bib": (2029, 2025, 1711, 0, 267),
    "wisemanp--DES-SN-Galactic-Rates.bib": (933, 877, 740, 2, 30),
}


@lru_cache(maxsize=None)
def _read(path: Path) -> LibraryImport:
    return read_library(path)


def library(shared_data: Path, name: str) -> LibraryImport:
    return _read(shared_data / "libraries" / name)


def by_key(lib: LibraryImport) -> dict:
    return {p.raw["library_key"].split(":", 1)[1]: p for p in lib.papers}


def test_every_shared_library_is_here(shared_data):
    assert sorted(p.name for p in (shared_data / "libraries").glob("*.bib")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_real_library_parses_with_exact_counts(shared_data, name):
    entries, kept, with_abstract, skipped, unidentified = EXPECTED[name]
    lib = library(shared_data, name)
    assert lib.format == "bibtex"
    assert lib.entries == entries  # the entry counts SOURCES.md gives for these files
    assert len(lib.papers) == kept
    assert lib.merged == entries - skipped - kept
    assert sum(1 for p in lib.papers if p.abstract) == with_abstract
    assert len(lib.skipped) == skipped
    assert len(lib.unidentified) == unidentified
    # one record per entry key, each carrying its library key, and nothing but library records
    ids = [p.source_id for p in lib.papers]
    assert len(set(ids)) == len(ids)
    assert all(p.source == "library" and p.raw["library_key"] == p.source_id for p in lib.papers)
    assert all(p.source_id.startswith(f"{name}:") and p.title for p in lib.papers)


def test_broken_and_untitled_entries_are_skipped_with_their_line(shared_data):
    skipped = [s for name in sorted(EXPECTED) for s in library(shared_data, name).skipped]
    assert skipped == [
        "AurinaBMH--PHDthesisLatex.bib:8971: @article{}: no title, skipped",
        "AurinaBMH--PHDthesisLatex.bib:9477: @book{}: no title, skipped",
        "AurinaBMH--PHDthesisLatex.bib:10657: @article{Schwanhausser2011}: unbalanced braces or quotes "
        "(it runs into what follows), skipped",
        "DayTimeChunks--HydrologicalMonitoring.bib:632: @misc{Tawney2005}: no title, skipped",
        "DayTimeChunks--HydrologicalMonitoring.bib:1867: @incollection{Armstrong1990}: no title, skipped",
        "DayTimeChunks--HydrologicalMonitoring.bib:5068: @article{Press2009}: no title, skipped",
        "fbcotter--thesis.bib:7804: @report{noauthor_notitle_nodate}: no title, skipped",
        "wisemanp--DES-SN-Galactic-Rates.bib:2718: @article{Diehl2018}: no title, skipped",
        "wisemanp--DES-SN-Galactic-Rates.bib:12868: @article{Swann2020}: no title, skipped",
    ]
    lines = (shared_data / "libraries" / "AurinaBMH--PHDthesisLatex.bib").read_bytes().split(b"\n")  # a lone \r is no line end
    assert lines[10657 - 1] == b"@article{Schwanhausser2011,"
    # the entry after the broken one is not lost
    assert by_key(library(shared_data, "AurinaBMH--PHDthesisLatex.bib"))["Calabrese2015"].title == (
        "A Diffusion MRI Tractography Connectome of the Mouse Brain and Comparison with Neuronal Tracer Data."
    )


def test_named_entries(shared_data):
    caccioli = by_key(library(shared_data, "7brunner--SysRiskWelfare.bib"))["Caccioli2015"]
    assert caccioli.title == "Overlapping portfolios, contagion, and financial stability"
    assert [a.name for a in caccioli.authors] == ["Fabio Caccioli", "J. Doyne Farmer", "Nick Foti", "Daniel Rockmore"]
    assert (caccioli.doi, caccioli.published, caccioli.venue) == (
        "10.1016/j.jedc.2014.09.041", date(2015, 2, 1), "Journal of Economic Dynamics and Control"
    )

    # Mendeley: arXiv id in arxivId with the old-style archive; PMID field; `journal = {\apj}`
    boss = by_key(library(shared_data, "7brunner--SysRiskWelfare.bib"))["Boss2003"]
    assert (boss.arxiv_id, boss.doi, boss.pmid) == ("cond-mat/0309582", "10.1080/14697680400020325", "16605618")
    prochaska = by_key(library(shared_data, "wisemanp--DES-SN-Galactic-Rates.bib"))["Prochaska2007b"]
    assert prochaska.title == (
        "Probing the Interstellar Medium near Star‐forming Regions with Gamma‐Ray Burst Afterglow "
        "Spectroscopy: Gas, Metals, and Dust"
    )
    assert (prochaska.arxiv_id, prochaska.doi, prochaska.venue, prochaska.published) == (
        "astro-ph/0703665", "10.1086/520042", "The Astrophysical Journal", date(2007, 9, 1)
    )
    assert prochaska.authors[2].name == "Miroslava Dessauges-Zavadsky"  # "Dessauges--Zavadsky"
    assert "damped Ly$\\alpha$ systems (DLAs)" in prochaska.abstract  # math kept as written

    seguin = by_key(library(shared_data, "AurinaBMH--PHDthesisLatex.bib"))["Seguin2018"]
    assert (seguin.title, seguin.authors[1].name, seguin.doi, seguin.pmid, seguin.published) == (
        "Navigation of brain networks.", "Martijn P van den Heuvel", "10.1073/pnas.1801351115", "29848631", date(2018, 5, 1)
    )
    zhou = by_key(library(shared_data, "AurinaBMH--PHDthesisLatex.bib"))["Zhou2003"]
    assert (zhou.arxiv_id, zhou.authors[1].name, zhou.work_type) == ("cs/0308036", "Raúl J Mondragón", "preprint")

    # a DOI field that says "DOI 10.2136/…"
    shi = by_key(library(shared_data, "DayTimeChunks--HydrologicalMonitoring.bib"))["Shi2011"]
    assert (shi.title, shi.doi, shi.authors[0].name) == (
        "Solute Transfer from the Soil Surface to Overland Flow: A Review", "10.2136/sssaj2010.0433", "X N Shi"
    )

    # Zotero escapes an abstract's math: \$n{\textbackslash}times n\$ is $n\times n$ again
    alt = by_key(library(shared_data, "El3ssar--zotero-bib.bib"))["altSpectralRadiusRandom2021"]
    assert alt.abstract.startswith("We consider random $n\\times n$ matrices $X$ with independent and centered entries")
    assert (alt.arxiv_id, alt.doi, alt.published) == ("1907.13631", "10.2140/pmp.2021.2.221", date(2021, 5, 1))

    # biblatex: eprinttype = arxiv / pmid, date = 2012-12-22
    zeiler = by_key(library(shared_data, "fbcotter--thesis.bib"))["zeiler_adadelta:_2012"]
    assert (zeiler.title, zeiler.arxiv_id, zeiler.published, zeiler.venue) == (
        "ADADELTA: An Adaptive Learning Rate Method", "1212.5701", date(2012, 12, 22), None
    )
    lake = by_key(library(shared_data, "fbcotter--thesis.bib"))["lake_human-level_2015"]
    assert (lake.pmid, lake.doi, lake.venue) == ("26659050", "10.1126/science.aab3050", "Science")

    sosa = by_key(library(shared_data, "NiklasTR--thesis.bib"))["Sosa2020-ai"]
    assert (sosa.pmid, sosa.pmcid, sosa.doi) == ("31797619", "PMC6937428", "10.1142/9789811215636_0041")
    keil = by_key(library(shared_data, "ryanboyd--References.bib"))["keil_contact_2020"]
    assert (keil.title, keil.authors[0].name, keil.doi, keil.published.year) == (
        "Contact Logger: Measuring everyday intergroup contact experiences in near-time", "Tina F. Keil",
        "10.3758/s13428-019-01335-w", 2020,
    )
    zou = by_key(library(shared_data, "AhmedThahir--Zotero_Database.bib"))["zouBayesianInPlayPrediction2020"]
    assert (zou.doi, zou.venue, zou.keywords[:2]) == ("10.3390/app10082904", "Applied Sciences", ["adjusting forecast", "association football"])


def test_duplicates_inside_a_file_are_one_record(shared_data):
    aurina = by_key(library(shared_data, "AurinaBMH--PHDthesisLatex.bib"))
    # the same DOI at lines 95 and 9875: one record, the first entry's key
    refseq = aurina["OLeary2016a"]
    assert refseq.doi == "10.1093/nar/gkv1189" and refseq.raw["duplicates"] == ["OLeary2016"]
    assert "OLeary2016" not in aurina
    # sixteen entries with an empty key are sixteen entries, not one key used sixteen times
    assert sum(1 for key in aurina if key.startswith("~")) == 14  # two of them are "No Title" and skipped

    brunner = by_key(library(shared_data, "7brunner--SysRiskWelfare.bib"))
    assert brunner["Bernanke1999"].raw["duplicates"] == ["Bernanke1999a", "Bernanke1999b"]  # same URL and title
    assert brunner["Strulik2013"].raw["duplicates"] == ["Strulik2013a", "Strulik2013b"]

    grackles = library(shared_data, "corinalogan--grackles.bib")
    keyed = by_key(grackles)
    # a paper kept once with its DOI and once without (the store's fuzzy rule)
    assert keyed["bell2009repeatability"].doi == "10.1016/j.anbehav.2008.12.022"
    assert keyed["bell2009repeatability"].raw["duplicates"] == ["bell_repeatability_2009"]
    # a key used by two different works keeps both, and says so
    assert keyed["logan2016behavioral"].title == "Behavioral flexibility in an invasive bird is independent of other behaviors"
    assert keyed["logan2016behavioral#2"].title == "Behavioral flexibility and problem solving in an invasive bird"
    assert grackles.notes == [
        "corinalogan--grackles.bib:532: key 'logan2016behavioral' is already another work's; kept as 'logan2016behavioral#2'"
    ]


@pytest.mark.parametrize(
    ("tex", "text"),
    [
        (r"We define \{{\textbackslash}em predictive information\} \$I\_\{{\textbackslash}rm pred\} (T)\$ as",
         r"We define {\em predictive information} $I_{\rm pred} (T)$ as"),
        (r"a bank's economic distress$\backslash$nto other agents", "a bank's economic distress to other agents"),
        (r"{\textless}0.05 and 5{\%} of R{\"o}ssler, Ly$\alpha$ at $z\sim 3$", r"<0.05 and 5% of Rössler, Ly$\alpha$ at $z\sim 3$"),
        (r"1--$10^4$ keV, see Fig.~1 and \textit{C. elegans} {\em in vivo}", "1–$10^4$ keV, see Fig. 1 and C. elegans in vivo"),
        ("{{Plain title}}", "Plain title"),
    ],
)
def test_tex_text(tex, text):
    assert tex_text(tex) == text


# ----------------------------------------------------------------------------- other formats

CACCIOLI_RIS = """TY  - JOUR
ID  - Caccioli2015
AU  - Caccioli, Fabio
AU  - Farmer, J. Doyne
TI  - Overlapping portfolios, contagion, and financial stability
AB  - We study the problem of interacting channels of contagion in financial networks.
DO  - 10.1016/j.jedc.2014.09.041
JO  - Journal of Economic Dynamics and Control
PY  - 2015/02//
KW  - Contagion
KW  - Systemic risk
UR  - http://www.sciencedirect.com/science/article/pii/S0165188914002632
ER  - 

TY  - JOUR
TI  - A record whose ER line was lost
AU  - Boss, Michael

TY  - JOUR
AU  - Bernanke, BS
TI  - The financial accelerator in a quantitative business cycle framework
UR  - http://www.sciencedirect.com/science/article/pii/S157400489910034X
PY  - 1999
ER  - 
"""


def test_ris(tmp_path):
    path = tmp_path / "mine.ris"
    path.write_text(CACCIOLI_RIS, encoding="utf-8")
    lib = read_library(path)
    assert lib.format == "ris" and lib.entries == 3
    assert lib.skipped == ["mine.ris:15: RIS record has no end (ER) before line 19, skipped"]
    first, second = lib.papers
    assert (first.source_id, first.title, first.doi, first.venue, first.published) == (
        "mine.ris:Caccioli2015", "Overlapping portfolios, contagion, and financial stability",
        "10.1016/j.jedc.2014.09.041", "Journal of Economic Dynamics and Control", date(2015, 2, 1),
    )
    assert [a.name for a in first.authors] == ["Fabio Caccioli", "J. Doyne Farmer"]
    assert (first.keywords, first.work_type) == (["Contagion", "Systemic risk"], "journal-article")
    assert second.source_id.startswith("mine.ris:~") and second.url_abs.endswith("S157400489910034X")


def test_csl_json_from_recorded_crossref_items(shared_data, tmp_path):
    """Crossref's work JSON is citeproc-json, the CSL dialect: a list of its items is a CSL-JSON library."""
    items = json.loads((shared_data / "crossref/cr_works-0.json").read_text(encoding="utf-8"))["message"]["items"]
    path = tmp_path / "works.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    lib = read_library(path)
    assert (lib.format, lib.entries, len(lib.papers), lib.skipped, len(lib.unidentified)) == ("csl-json", 20, 20, [], 0)
    first = lib.papers[0]
    assert (first.source_id, first.title, first.venue, first.published, first.work_type) == (
        "works.json:10.1016/j.acha.2016.05.001", "A sharp Balian–Low uncertainty principle for shift-invariant spaces",
        "Applied and Computational Harmonic Analysis", date(2018, 3, 1), "journal-article",
    )
    assert [a.name for a in first.authors[:2]] == ["Douglas P. Hardin", "Michael C. Northington V"]
    assert sum(1 for p in lib.papers if p.work_type == "preprint") == 2  # posted-content


def test_jsonl_of_paper_dicts_is_read_line_by_line(shared_data, tmp_path):
    snapshot = read_library(shared_data / "arxiv/snapshot/arxiv-metadata-oai-snapshot-head.jsonl")
    assert (snapshot.format, snapshot.entries, len(snapshot.papers), snapshot.skipped) == ("jsonl", 200, 200, [])
    first = snapshot.papers[0]
    assert (first.arxiv_id, first.doi, first.categories) == ("0704.0001", "10.1103/physrevd.76.013009", ["hep-ph"])
    assert [a.name for a in first.authors] == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]

    path = tmp_path / "mine.jsonl"
    path.write_text(
        json.dumps({"title": "Attention Is All You Need", "arxiv_id": "1706.03762v7", "authors": ["Ashish Vaswani"],
                    "published": "2017-06-12", "keywords": ["transformers"]}) + "\n"
        "{not json\n"
        + json.dumps(["a list"]) + "\n",
        encoding="utf-8",
    )
    lib = read_library(path)
    assert lib.skipped == [
        "mine.jsonl:2: not valid JSON: unexpected character, expected a string key, skipped",
        "mine.jsonl:3: not a JSON object, skipped",
    ]
    (paper,) = lib.papers
    assert (paper.source_id, paper.arxiv_id, paper.published, paper.keywords) == (
        "mine.jsonl:1706.03762", "1706.03762", date(2017, 6, 12), ["transformers"]
    )


def test_format_detection_and_unreadable_files(shared_data, tmp_path):
    assert detect_library_format("% Encoding: UTF-8\n\n@article{a,\n title={x}}\n", "x") == "bibtex"
    assert detect_library_format("\n\nTY  - JOUR\nER  - \n", "x") == "ris"
    assert detect_library_format('[{"id": "a"}]', "x") == "csl-json"
    assert detect_library_format('{"title": "x"}\n', "x") == "jsonl"
    notes = tmp_path / "notes.txt"
    notes.write_text("just some notes\n")
    with pytest.raises(ParseError, match=r"notes\.txt:1: unsupported library format"):
        read_library(notes)
    with pytest.raises(ParseError, match=r"missing\.bib: cannot read"):
        read_library(tmp_path / "missing.bib")
    with pytest.raises(ParseError, match=r"is a directory"):
        read_library(tmp_path)
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.5\n...")
    with pytest.raises(ParseError, match=r"paper\.pdf:1: unsupported file type"):
        read_library(pdf)


# ----------------------------------------------------------------------------- into the store


def _count(conn, table, *where) -> int:
    return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_storing_a_library_twice_changes_nothing_the_second_time(engine, shared_data):
    path = shared_data / "libraries" / "7brunner--SysRiskWelfare.bib"
    first, lib = import_library(engine, path)
    # every entry is stored: the 22 with no DOI, arXiv id, PMID or URL under their library key
    assert first.line() == "88 records: 88 added, 0 updated, 0 unchanged, 0 failed"
    assert len(lib.unidentified) == 22
    second, _ = import_library(engine, path)
    assert second.line() == "88 records: 0 added, 0 updated, 88 unchanged, 0 failed"
    with engine.connect() as conn:
        assert _count(conn, papers) == 88
        assert _count(conn, source_records, source_records.c.source == "library") == 88
        ids = imported_paper_ids(conn, lib.papers)
        assert len(ids) == 88 and len(set(ids)) == 88
        boss = conn.execute(select(papers).where(papers.c.arxiv_id == "cond-mat/0309582")).mappings().one()
        assert (boss["doi"], boss["pmid"], boss["origin"]) == ("10.1080/14697680400020325", "16605618", "library")


def test_a_library_does_not_duplicate_papers_the_store_already_holds(engine, shared_data):
    """El3ssar's and fbcotter's libraries both hold Kraskov et al. (same arXiv id and DOI) and
    Rosenblatt's perceptron (same DOI): the second import finds them instead of adding them."""
    first, _ = import_library(engine, shared_data / "libraries" / "El3ssar--zotero-bib.bib")
    assert first.line() == "679 records: 679 added, 0 updated, 0 unchanged, 0 failed"
    second, _ = import_library(engine, shared_data / "libraries" / "fbcotter--thesis.bib")
    assert second.line() == "618 records: 616 added, 2 updated, 0 unchanged, 0 failed"
    with engine.connect() as conn:
        assert _count(conn, papers) == 679 + 616
        (kraskov,) = conn.execute(
            select(paper_identifiers.c.paper_id).where(
                paper_identifiers.c.scheme == "doi", paper_identifiers.c.value == "10.1103/physreve.69.066138"
            )
        ).scalars().all()
        assert conn.execute(select(papers.c.arxiv_id).where(papers.c.id == kraskov)).scalar_one() == "cond-mat/0305641"
        sources = conn.execute(
            select(source_records.c.source_id).where(source_records.c.paper_id == kraskov).order_by(source_records.c.source_id)
        ).scalars().all()
        assert sources == ["El3ssar--zotero-bib.bib:kraskovEstimatingMutualInformation2004", "fbcotter--thesis.bib:kraskov_estimating_2004"]


def test_a_parser_crash_costs_one_entry_not_the_file(shared_data, monkeypatch):
    """Should bibtexparser itself raise on a file (it does on states it calls its own bugs), each
    entry is parsed on its own and only the one it fails on is lost."""
    import bibtexparser

    real = bibtexparser.parse_string

    def crashing(text, *args, **kwargs):
        if "@article{Caccioli2015," in text:
            raise RuntimeError("detected an invalid state")
        return real(text, *args, **kwargs)

    monkeypatch.setattr(bibtexparser, "parse_string", crashing)
    lib = read_library(shared_data / "libraries" / "7brunner--SysRiskWelfare.bib")
    assert lib.skipped == [
        "7brunner--SysRiskWelfare.bib:251: @article{Caccioli2015}: not readable (detected an invalid state), skipped"
    ]
    assert (lib.entries, len(lib.papers)) == (106, 87)
    assert by_key(lib)["Boss2003"].arxiv_id == "cond-mat/0309582"
