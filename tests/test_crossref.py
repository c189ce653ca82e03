"""Crossref REST API: every recorded answer parsed with exact expectations, the client's requests
compared with the recorded ones, the recorded three-page cursor walk replayed to its end through a
real local server, the 404 "Resource not found." bodies, 429 with Retry-After, and Crossref's 400
validation failure (hand-written from the API documentation: no 400 was recorded)."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson
import pytest
from localserver import LocalServer, Reply

from academichub.errors import FeedError, ParseError, SourceError
from academichub.model import AuthorData, RelationData
from academichub.sources.crossref import CrossrefClient, date_from_parts, normalize_doi, parse_work, parse_works
from academichub.sources.http import HTTPStatusError, PoliteClient

NOT_FOUND_FILES = {"cr_works-9.json", "cr_journals_issn_workstrue_behavior-0.json", "cr_journals_issn_workstrue_behavior-1.json"}
XML_FILE = "cr_abstract-0.xml"  # unixsd XML, not the JSON API: its abstract is tested in test_jats.py
CURSOR_PAGES = [f"cr_works_with_cursor_and_progress_bar-{i}.json" for i in range(3)]
JOURNAL_PAGE = "cr_journals_issn_workstrue_behavior-2.json"

# file -> (papers, total-results, next-cursor given); single works have no total.
EXPECTED = {
    "cr_works-0.json": (20, 94960, False),
    "cr_works-1.json": (20, 9268, False),
    "cr_works-2.json": (3, 308788, False),
    "cr_works-3.json": (20, 100544887, False),
    "cr_works-4.json": (1, None, False),
    "cr_works-5.json": (1, None, False),
    "cr_works-6.json": (1, None, False),
    "cr_works-7.json": (0, 10, False),  # rows=0: facets only
    "cr_works-8.json": (1, 1, False),  # sample=1
    "cr_works-10.json": (1, None, False),
    **{f"cr_works_parses_funders-{i}.json": (1, None, False) for i in range(9)},
    JOURNAL_PAGE: (20, 4321, False),
    **{name: (30, 452242, True) for name in CURSOR_PAGES},
}


@pytest.fixture(scope="module")
def cr_dir(shared_data) -> Path:
    return shared_data / "crossref"


def parse(cr_dir: Path, name: str):
    path = cr_dir / name
    return parse_works(path.read_bytes(), str(path))


def the_paper(cr_dir: Path, name: str):
    batch = parse(cr_dir, name)
    assert len(batch.papers) == 1
    return batch.papers[0]


def recorded_requests(cr_dir: Path) -> list[tuple[str, int, str]]:
    lines = (cr_dir / "urls.tsv").read_text().splitlines()
    assert lines[0] == "file\tstatus\turl"
    return [(f, int(s), u) for f, s, u in (line.split("\t") for line in lines[1:])]


def recorded_item(cr_dir: Path, name: str, index: int = 0) -> dict:
    message = orjson.loads((cr_dir / name).read_bytes())["message"]
    return message["items"][index] if "items" in message else message


# --- every recorded file -------------------------------------------------------------------------


def test_the_table_covers_every_recorded_file(cr_dir):
    on_disk = {p.name for p in cr_dir.iterdir() if p.name != "urls.tsv"}
    assert on_disk == set(EXPECTED) | NOT_FOUND_FILES | {XML_FILE}
    assert {f for f, _, _ in recorded_requests(cr_dir)} == on_disk
    assert {f for f, status, _ in recorded_requests(cr_dir) if status == 404} == NOT_FOUND_FILES


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_file_counts_and_invariants(cr_dir, name):
    batch = parse(cr_dir, name)
    papers, total, has_cursor = EXPECTED[name]
    assert (len(batch.papers), batch.total_results, batch.resumption_token is not None) == (papers, total, has_cursor)
    for paper in batch.papers:
        assert paper.source == "crossref"
        assert paper.source_id == paper.doi == paper.doi.lower() == normalize_doi(paper.raw["DOI"])
        assert paper.url_abs == f"http://dx.doi.org/{paper.raw['DOI']}"
        assert isinstance(paper.published, date) and not isinstance(paper.published, datetime)
        assert paper.work_type == paper.raw["type"] and paper.publisher
        assert isinstance(paper.citation_count, int) and paper.citation_count >= 0
        for text in [paper.title, paper.abstract, paper.venue or "", *(a.name for a in paper.authors),
                     *(a.affiliation or "" for a in paper.authors), *(label for _, label in paper.subjects)]:
            assert text == " ".join(text.split()), text
            assert not re.search(r"<[a-z/]|&[#a-z0-9]+;", text), text
            assert "Ã" not in text, text  # doubly decoded UTF-8 is repaired
        assert all(a.name for a in paper.authors)
        assert all(re.fullmatch(r"\d{4}-\d{4}-\d{4}-\d{3}[\dX]", a.orcid) for a in paper.authors if a.orcid)
        assert [a.orcid is not None for a in paper.authors] == ["ORCID" in a for a in paper.raw.get("author", [])]
        assert all(re.fullmatch(r"\d{4}-\d{3}[\dX]", issn) for issn in paper.issns)
        assert all(scheme == "crossref" for scheme, _ in paper.subjects)
        assert "reference" not in paper.raw  # reference lists are large and not needed
        json.dumps(paper.raw)  # raw goes into a JSON column


@pytest.mark.parametrize("name", sorted(NOT_FOUND_FILES))
def test_resource_not_found_body_is_a_clear_error_naming_the_location(cr_dir, name):
    path = cr_dir / name
    assert path.read_bytes() == b"Resource not found."
    with pytest.raises(FeedError, match=re.escape(str(path)) + ".*no such resource") as caught:
        parse_works(path.read_bytes(), str(path))
    assert (caught.value.url, caught.value.status) == (str(path), 404)


def test_cursor_pages_carry_the_same_cursor_and_different_works(cr_dir):
    """Crossref hands back the cursor it was sent: a walk cannot end on "the cursor repeated"."""
    batches = [parse(cr_dir, name) for name in CURSOR_PAGES]
    cursor_sent = dict(parse_qsl(urlsplit(recorded_requests(cr_dir)[1][2]).query))["cursor"]
    assert {b.resumption_token for b in batches} == {cursor_sent}
    assert len(cursor_sent) == 272 and cursor_sent.endswith("==")
    dois = [p.doi for b in batches for p in b.papers]
    assert len(dois) == len(set(dois)) == 90


# --- named records: single works -------------------------------------------------------------------


def test_journal_article_with_online_and_print_dates(cr_dir):
    paper = the_paper(cr_dir, "cr_works-10.json")
    assert (paper.source_id, paper.doi) == ("10.1038/nnano.2014.279", "10.1038/nnano.2014.279")
    assert paper.title == "Charges ride the spin wave"
    assert paper.authors == [AuthorData("Timo Kuschel"), AuthorData("Günter Reiss")]
    assert paper.venue == "Nature Nanotechnology"
    assert paper.issns == ["1748-3387", "1748-3395"]
    assert paper.publisher == "Springer Science and Business Media LLC"
    assert paper.work_type == "journal-article"
    assert paper.published == date(2014, 11, 10)  # published-online, not published-print 2015-01
    assert paper.license == "http://www.springer.com/tdm"
    assert paper.url_abs == "http://dx.doi.org/10.1038/nnano.2014.279"
    assert paper.citation_count == 44
    assert len(paper.subjects) == 6
    assert paper.subjects[0] == ("crossref", "Electrical and Electronic Engineering")
    assert paper.subjects[-1] == ("crossref", "Bioengineering")
    assert (paper.abstract, paper.relations, paper.arxiv_id, paper.server) == ("", [], None, None)
    assert (paper.raw["volume"], paper.raw["issue"], paper.raw["page"]) == ("10", "1", "22-24")
    assert paper.raw["published-print"] == {"date-parts": [[2015, 1]]}


@pytest.mark.parametrize(
    "name, doi, title, issns, published",
    [
        ("cr_works-4.json", "10.1007/12080.1874-1746", "Theoretical Ecology", ["1874-1738", "1874-1746"], date(2013, 5, 25)),
        ("cr_works-5.json", "10.1007/10452.1573-5125", "Aquatic Ecology", ["1386-2588", "1573-5125"], date(2013, 5, 24)),
        ("cr_works-6.json", "10.1111/(issn)1442-9993", "Austral Ecology", ["1442-9985", "1442-9993"], date(2010, 5, 10)),
    ],
)
def test_journal_records_without_an_issued_date_fall_back_to_created(cr_dir, name, doi, title, issns, published):
    paper = the_paper(cr_dir, name)
    assert paper.raw["issued"] == {"date-parts": [[None]]}
    assert (paper.doi, paper.title, paper.issns, paper.published) == (doi, title, issns, published)
    assert (paper.work_type, paper.authors, paper.venue) == ("journal", [], None)


def test_abstract_heading_dropped_and_print_date_used(cr_dir):
    paper = the_paper(cr_dir, "cr_works_parses_funders-0.json")
    assert paper.doi == "10.1515/crelle-2013-0024"
    assert paper.title == "Rigidity and stability of Einstein metrics for quadratic curvature functionals"
    assert paper.authors == [AuthorData("Matthew J. Gursky"), AuthorData("Jeff A. Viaclovsky")]
    assert paper.abstract.startswith("We investigate rigidity and stability properties of critical points of quadratic")
    assert "possible to “gauge” the Euler–Lagrange equations" in paper.abstract
    assert paper.venue == "Journal für die reine und angewandte Mathematik (Crelles Journal)"
    assert paper.published == date(2015, 1, 1)
    assert paper.license is None and paper.citation_count == 3
    assert paper.raw["funder"][0]["name"]  # kept for later use: PaperData has no funders


def test_orcid_from_url_and_the_version_of_record_licence(cr_dir):
    paper = the_paper(cr_dir, "cr_works_parses_funders-6.json")
    assert paper.title == "Delay in Diagnosis of Spinal Muscular Atrophy: A Systematic Literature Review"
    assert paper.raw["author"][0]["ORCID"] == "http://orcid.org/0000-0001-9219-2449"
    assert paper.authors[0] == AuthorData("Chia-Wei Lin", orcid="0000-0001-9219-2449")
    assert paper.authors[1] == AuthorData("Stephanie J. Kalb")
    assert paper.published == date(2015, 10, 1)  # date-parts [[2015, 10]]
    # Elsevier lists its text-mining licence first; the article itself is CC BY-NC-ND
    assert [entry["content-version"] for entry in paper.raw["license"]] == ["tdm", "vor"]
    assert paper.license == "http://creativecommons.org/licenses/by-nc-nd/4.0/"
    assert (paper.issns, paper.venue, paper.citation_count) == (["0887-8994"], "Pediatric Neurology", 60)


def test_proceedings_article_with_only_a_year(cr_dir):
    paper = the_paper(cr_dir, "cr_works_parses_funders-2.json")
    assert paper.doi == "10.1145/2831244.2831252"
    assert paper.work_type == "proceedings-article"
    assert paper.title == "Performance evaluation and tuning of BioPig for genomic analysis"
    assert paper.authors[0] == AuthorData("Lizhen Shi")
    assert paper.published == date(2015, 1, 1)  # date-parts [[2015]]
    assert paper.venue.startswith("Proceedings of the 2015 International Workshop on Data-Intensive Scalable")
    assert paper.publisher == "ACM Press" and paper.issns == []


def test_the_same_work_recorded_twice_parses_the_same(cr_dir):
    assert the_paper(cr_dir, "cr_works_parses_funders-3.json") == the_paper(cr_dir, "cr_works_parses_funders-4.json")


def test_dataset_record(cr_dir):
    paper = the_paper(cr_dir, "cr_works_parses_funders-1.json")
    assert (paper.doi, paper.work_type) == ("10.1186/isrctn11093872", "dataset")
    assert paper.title == "CapaCiTY Study 2 - Chronic Constipation Treatment Pathway"
    assert paper.authors == [AuthorData("Shiva Taheri")]
    assert paper.published == date(2015, 11, 11)


def test_sampled_book_chapter(cr_dir):
    paper = the_paper(cr_dir, "cr_works-8.json")
    assert (paper.doi, paper.title, paper.work_type) == ("10.7591/9781501700422-014", "Index", "book-chapter")
    assert paper.venue == "Illocutionary Acts and Sentence Meaning"
    assert paper.published == date(2017, 12, 31)


# --- named records: lists --------------------------------------------------------------------------


def test_nsf_query_page(cr_dir):
    papers = parse(cr_dir, "cr_works-0.json").papers
    assert sum(len(p.authors) for p in papers) == 93
    assert sum(a.orcid is not None for p in papers for a in p.authors) == 47
    first = papers[0]
    assert first.doi == "10.1016/j.acha.2016.05.001"
    assert first.title == "A sharp Balian–Low uncertainty principle for shift-invariant spaces"
    assert [a.name for a in first.authors] == ["Douglas P. Hardin", "Michael C. Northington V", "Alexander M. Powell"]
    # two spaces inside the affiliation upstream
    assert papers[2].authors[0] == AuthorData(
        "Yulong Ma", "Department of Civil and Environmental Engineering Washington State University Pullman WA USA",
        "0000-0001-9644-7445",
    )
    assert papers[9].title == (
        "Enzyme transient state kinetics in crystal and solution from the perspective of a time-resolved crystallographer"
    )
    assert papers[9].authors[0].affiliation == "Physics Department, University of Wisconsin, Milwaukee, Wisconsin 53211, USA"
    assert papers[15].venue == "Light: Science & Applications"  # "&amp;" upstream
    assert papers[17].venue == "IEEE Communications Surveys & Tutorials"


def test_preprint_with_is_preprint_of(cr_dir):
    papers = parse(cr_dir, "cr_works-0.json").papers
    preprint = papers[19]
    assert preprint.doi == "10.1002/essoar.10504562.1"
    assert (preprint.work_type, preprint.server, preprint.raw["subtype"]) == ("posted-content", "essoar", "preprint")
    assert preprint.title == "Leveraging Uncertainty Quantification to Design Ocean Climate Observing Systems"
    assert preprint.authors == [
        AuthorData("Nora Loose", "University of Texas at Austin", "0000-0002-3684-9634"),
        AuthorData("Patrick Heimbach", "The University of Texas at Austin", "0000-0003-3925-6161"),
    ]
    assert preprint.published == date(2020, 10, 27)  # issued: the posting date
    assert preprint.venue is None
    # "this record is the preprint of 10.1029/2020MS002386"
    assert preprint.relations == [RelationData("preprint-of", "doi", "10.1029/2020ms002386")]
    # its second version says nothing of the article
    assert (papers[14].doi, papers[14].relations, papers[14].published) == (
        "10.1002/essoar.10504562.2", [], date(2021, 1, 12)
    )


def test_renear_page(cr_dir):
    papers = parse(cr_dir, "cr_works-1.json").papers
    science = papers[0]
    assert science.doi == "10.1126/science.1157784"
    assert science.abstract.startswith("Strategic Reading: Scanning the scientific literature these days")
    assert science.published == date(2009, 8, 14)
    assert science.authors[0].name == "Allen H. Renear"
    assert papers[4].doi == "10.1023/a:1001832310939" and papers[4].title == ""  # no title upstream
    # two container titles: the series first, as Crossref lists them
    assert papers[5].venue == "Balisage Series on Markup Technologies"
    assert papers[5].raw["container-title"][1] == "Proceedings of Balisage: The Markup Conference 2019"
    assert papers[8].authors == [] and papers[8].abstract.startswith("Andean ontologies can be used")
    assert papers[9].abstract.startswith("Most definitions of document current in the document processing")


def test_orcid_filtered_page(cr_dir):
    papers = parse(cr_dir, "cr_works-2.json").papers
    assert [p.doi for p in papers] == ["10.1111/geb.12517", "10.1111/glob.12341", "10.1111/phpp.12112"]
    assert papers[1].authors[0] == AuthorData(
        "Bahar Baser",
        "School of Government and International Affairs, Durham University, United Kingdom & SIGLA Stellenbosch "
        "University South Africa",
        "0000-0002-8583-5909",
    )
    assert papers[2].title == "Global state of sunscreens"


def test_full_text_page(cr_dir):
    papers = parse(cr_dir, "cr_works-3.json").papers
    assert papers[14].authors == [AuthorData("Govindjee")]  # family name only
    assert papers[16].title == "Verifying powerline emissions & immunity test systems per IEC standards & technical reports"
    assert papers[7].abstract.startswith("As The Last Thing I Build opens, Jerry Fenner somehow finds himself")
    assert papers[4].published == date(1934, 1, 1)


def test_journal_works_page(cr_dir):
    papers = parse(cr_dir, JOURNAL_PAGE).papers
    assert Counter(p.work_type for p in papers) == {"journal-article": 18, "journal-issue": 2}
    assert sum(len(p.authors) for p in papers) == 84
    carbonate = papers[2]
    assert carbonate.doi == "10.1093/femsec/fiab110"
    assert carbonate.title.startswith("Microbial perspective on the giant carbonate ridge Alpha Crucis")
    assert carbonate.abstract.startswith("Deep-sea carbonate mounds can harbor a wide variety")
    assert carbonate.authors[0] == AuthorData(
        "Amanda Gonçalves Bendia", "Instituto Oceanográfico, Universidade de São Paulo, São Paulo, Brazil",
        "0000-0003-0042-8990",
    )
    # recorded as "Marr\u00c3\u00a3o": doubly decoded UTF-8 in the deposit
    assert [a.name for a in papers[3].authors[:2]] == ["Gina Marrão", "António Veríssimo"]
    assert papers[7].authors[0].name == "H. Tschäpe"
    # the deposit glued the italics to their neighbours
    assert papers[6].title == (
        "Effect of the IncP-1β plasmid pHB44 on the population dynamics of Burkholderia terrae BS001 in the "
        "Lyophyllum sp. strain Karsten mycosphere under different iron conditions"
    )
    assert papers[6].issns == ["1574-6941"]
    assert papers[18].authors[0].name == "Nancy I. López"
    issue = papers[1]
    assert (issue.doi, issue.title, issue.work_type, issue.published) == (
        "10.1111/fem.2005.52.issue-3", "", "journal-issue", date(2005, 5, 1)
    )


def test_cursor_page_with_is_identical_to(cr_dir):
    papers = parse(cr_dir, CURSOR_PAGES[0]).papers
    assert papers[0].doi == "10.1093/obo/9780199830060-0238"
    assert (papers[0].title, papers[0].work_type, papers[0].venue) == ("Communicating Ecology", "reference-entry", "Ecology")
    assert papers[3].authors == [AuthorData("André Kessler")]
    chapter = papers[22]
    assert chapter.title == "Introduction: Guattari and Ecology"
    assert chapter.relations == [RelationData("identical-to", "doi", "10.1515/9781474450782-004")]
    assert "places Guattari’s Schizoanalytic Cartographies at the conceptual centre" in chapter.abstract


# --- the parser on edited and broken input ---------------------------------------------------------


def test_relations_in_both_directions_and_to_arxiv(cr_dir):
    # No recorded work has has-preprint; these are written into the recorded Nature Nanotech work.
    item = recorded_item(cr_dir, "cr_works-10.json")
    item["relation"] = {
        "has-preprint": [
            {"id-type": "doi", "id": "10.48550/arXiv.1409.1234", "asserted-by": "subject"},
            {"id-type": "doi", "id": "https://doi.org/10.1101/2020.01.01.123456", "asserted-by": "object"},
            {"id-type": "arxiv", "id": "arXiv:hep-th/9901001v2", "asserted-by": "subject"},
            {"id-type": "uri", "id": "https://example.org/x", "asserted-by": "subject"},
        ],
        "is-preprint-of": [{"id-type": "doi", "id": "10.1000/JOURNAL.1", "asserted-by": "subject"}],
        "is-review-of": [{"id-type": "doi", "id": "10.1000/reviewed", "asserted-by": "subject"}],
    }
    paper = parse_work(item, "edited")
    assert paper.relations == [
        RelationData("preprint-of", "doi", "10.1000/journal.1"),
        RelationData("has-preprint", "arxiv", "1409.1234"),
        RelationData("has-preprint", "doi", "10.1101/2020.01.01.123456"),
        RelationData("has-preprint", "arxiv", "hep-th/9901001"),
    ]
    assert paper.raw["relation"]["is-review-of"]  # not a version of the work: kept in raw only


def test_arxiv_doi_sets_the_arxiv_id(cr_dir):
    item = recorded_item(cr_dir, "cr_works-10.json")
    item["DOI"] = "10.48550/arXiv.2411.17700"
    paper = parse_work(item, "edited")
    assert (paper.doi, paper.source_id, paper.arxiv_id) == ("10.48550/arxiv.2411.17700", "10.48550/arxiv.2411.17700", "2411.17700")
    item["DOI"] = "10.48550/arXiv.math.AG/0101001"  # an old-style id keeps its upper-case subject class
    assert parse_work(item, "edited").arxiv_id == "math.AG/0101001"


def test_organisation_author_and_affiliation_entities(cr_dir):
    item = recorded_item(cr_dir, "cr_works-10.json")
    item["author"] = [
        {"name": "The  LIGO Scientific Collaboration", "sequence": "first", "affiliation": []},
        {"given": "J\\'er\\^ome", "family": "Dupr\\'e", "ORCID": "https://orcid.org/0000-0002-1694-233x",
         "affiliation": [{"name": "Lab A &amp; B"}, {"name": "Second Lab"}]},
        {"sequence": "additional", "affiliation": []},  # nothing to name: skipped
    ]
    assert parse_work(item, "edited").authors == [
        AuthorData("The LIGO Scientific Collaboration"),
        AuthorData("Jérôme Dupré", "Lab A & B", "0000-0002-1694-233X"),
    ]


def test_date_parts_of_every_precision():
    assert date_from_parts({"date-parts": [[2015, 1, 2]]}, "issued", "x") == date(2015, 1, 2)
    assert date_from_parts({"date-parts": [[2015, 1]]}, "issued", "x") == date(2015, 1, 1)
    assert date_from_parts({"date-parts": [[2015]]}, "issued", "x") == date(2015, 1, 1)
    assert date_from_parts({"date-parts": [[None]]}, "issued", "x") is None
    assert date_from_parts({"date-parts": [[2015, 13, 40]]}, "issued", "x") == date(2015, 1, 1)
    assert date_from_parts({"date-parts": [[2015, 2, 30]]}, "issued", "x") == date(2015, 2, 1)
    assert date_from_parts({"date-parts": [["2015", "3"]]}, "issued", "x") == date(2015, 3, 1)
    assert date_from_parts(None, "issued", "x") is None
    with pytest.raises(ParseError, match=r"where: issued: date-parts are not numbers"):
        date_from_parts({"date-parts": [["spring"]]}, "issued", "where")


def test_invalid_json_names_the_location_and_line(cr_dir):
    content = (cr_dir / "cr_works-4.json").read_bytes()[:500]
    with pytest.raises(ParseError, match=r"^cut\.json:1: not JSON") as caught:
        parse_works(content, "cut.json")
    assert caught.value.location == "cut.json" and caught.value.line == 1
    with pytest.raises(ParseError, match=r"^binary:1: not JSON"):
        parse_works(b"\xff\xfe{}", "binary")


def test_work_without_doi_names_the_item(cr_dir):
    document = orjson.loads((cr_dir / "cr_works-2.json").read_bytes())
    del document["message"]["items"][1]["DOI"]
    with pytest.raises(ParseError, match=re.escape("page.json (item 1): work without a DOI")):
        parse_works(orjson.dumps(document), "page.json")


def test_other_message_types_are_refused():
    # hand-written: no journal answer was recorded; the envelope is Crossref's
    content = b'{"status":"ok","message-type":"journal","message-version":"1.0.0","message":{"title":"X"}}'
    with pytest.raises(ParseError, match="expected a work or a work-list, got message-type 'journal'"):
        parse_works(content, "journal.json")


# Hand-written from the API documentation (no 400 was recorded): Crossref's answer to a bad filter.
VALIDATION_FAILURE = orjson.dumps({
    "status": "failed",
    "message-type": "validation-failure",
    "message": [{
        "type": "filter-not-available",
        "value": "nonsense",
        "message": "Filter nonsense specified but there is no such filter for this route.",
    }],
})


def test_validation_failure_body_is_a_feed_error():
    with pytest.raises(FeedError, match="bad.json: Crossref refused the request: Filter nonsense specified"):
        parse_works(VALIDATION_FAILURE, "bad.json")


# --- the client against the local server -----------------------------------------------------------


def _query_key(query: str) -> frozenset:
    return frozenset((k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "mailto")


@pytest.fixture(scope="module")
def recorded_answers(cr_dir) -> dict[tuple, list[Reply]]:
    """(path, query) -> the recorded replies to that request, in the order they were recorded."""
    answers: dict[tuple, list[Reply]] = {}
    for name, status, url in recorded_requests(cr_dir):
        if name == XML_FILE:
            continue
        parts = urlsplit(url)
        content_type = "application/json" if status == 200 else "text/plain"
        reply = Reply(status, (cr_dir / name).read_bytes(), {"Content-Type": content_type})
        answers.setdefault((parts.path, _query_key(parts.query)), []).append(reply)
    return answers


@pytest.fixture
def crossref_server(module_server, recorded_answers):
    """Answers every recorded request with its recorded file; the same request asked again gets the
    next file recorded for it (the cursor walk asked twice with one cursor), then the last again.
    `answer(path, params, *replies)` adds or replaces the answers to one request."""
    server = module_server
    server.routes.clear()
    server.requests.clear()
    answers = dict(recorded_answers)
    asked: Counter = Counter()

    def handler(raw_path: str, headers: dict) -> Reply:
        parts = urlsplit(raw_path)
        key = (unquote(parts.path), _query_key(parts.query))
        if key not in answers:
            return Reply(404, b"no recorded answer for " + raw_path.encode(), {"Content-Type": "text/plain"})
        replies = answers[key]
        asked[key] += 1
        return replies[min(asked[key], len(replies)) - 1]

    def answer(path: str, params: dict, *replies: Reply) -> None:
        answers[(path, frozenset(params.items()))] = list(replies)
        server.route(path, handler=handler)

    for path, _ in answers:
        server.route(path, handler=handler)
    server.answer = answer
    return server


@pytest.fixture
def client(crossref_server, sleeps):
    http = PoliteClient(user_agent="AcademicHub-tests", retries=2, sleep=sleeps.append)
    yield CrossrefClient(http, crossref_server.url(""))
    http.close()


def sent(server) -> list[tuple[str, dict]]:
    return [(unquote(urlsplit(p).path), dict(parse_qsl(urlsplit(p).query))) for p, _ in server.requests]


@pytest.mark.parametrize(
    "asked, recorded_file",
    [
        ("10.1038/nnano.2014.279", "cr_works-10.json"),
        ("https://doi.org/10.1038/NNANO.2014.279", "cr_works-10.json"),
        ("doi:10.1111/(ISSN)1442-9993", "cr_works-6.json"),
        ("10.1515/crelle-2013-0024", "cr_works_parses_funders-0.json"),
        ("10.1016/j.pediatrneurol.2015.06.002", "cr_works_parses_funders-6.json"),
    ],
)
def test_work_by_doi_sends_the_recorded_request(cr_dir, crossref_server, client, asked, recorded_file):
    paper = client.work(asked)
    recorded_url = next(url for name, _, url in recorded_requests(cr_dir) if name == recorded_file)
    assert sent(crossref_server) == [(urlsplit(recorded_url).path, {})]
    assert paper == the_paper(cr_dir, recorded_file)


def test_unknown_doi_is_a_not_found_error_naming_the_url(crossref_server, client):
    with pytest.raises(FeedError, match="Crossref has no work with DOI blblbl") as caught:
        client.work("blblbl")
    assert caught.value.status == 404
    assert caught.value.url == crossref_server.url("/works/blblbl")
    assert crossref_server.url("/works/blblbl") in str(caught.value)
    assert isinstance(caught.value.__cause__, HTTPStatusError)
    assert caught.value.__cause__.body == b"Resource not found."
    assert len(crossref_server.requests) == 1  # a 404 is not retried


def test_unknown_journal_is_a_not_found_error_naming_the_url(crossref_server, client):
    with pytest.raises(FeedError, match="Crossref has no journal with ISSN 0074-7742") as caught:
        client.journal_works("0074-7742", rows=None, cursor=None)  # the recorded request had no parameters
    assert caught.value.url == crossref_server.url("/journals/0074-7742/works")
    assert caught.value.status == 404


def test_journal_works_with_dates_rows_and_cursor(cr_dir, crossref_server, client):
    # the recorded answer for /journals/1574-6941/works, paired with the filters a daily harvest sends
    params = {"filter": "from-index-date:2024-11-01,from-pub-date:2024-01,until-pub-date:2024-12-31",
              "rows": "20", "cursor": "*"}
    crossref_server.answer("/journals/1574-6941/works", params, Reply(200, (cr_dir / JOURNAL_PAGE).read_bytes()))
    batch = client.journal_works(
        " 1574-6941 ", from_index_date=date(2024, 11, 1), from_pub_date="2024-01",
        until_pub_date=datetime(2024, 12, 31, 23, 59), rows=20,
    )
    assert sent(crossref_server) == [("/journals/1574-6941/works", params)]
    assert batch.papers == parse(cr_dir, JOURNAL_PAGE).papers
    assert batch.total_results == 4321


@pytest.mark.parametrize(
    "kwargs, recorded_file",
    [
        ({"query": "NSF", "rows": None, "cursor": None}, "cr_works-0.json"),
        ({"query": "renear+-ontologies", "rows": None, "cursor": None}, "cr_works-1.json"),
        ({"filter": {"has-orcid": True}, "query": "global state", "rows": 3, "cursor": None}, "cr_works-2.json"),
        ({"filter": {"has-full-text": True}, "rows": None, "cursor": None}, "cr_works-3.json"),
    ],
)
def test_works_query_sends_the_recorded_request(cr_dir, crossref_server, client, kwargs, recorded_file):
    batch = client.works(**kwargs)
    recorded_url = next(url for name, _, url in recorded_requests(cr_dir) if name == recorded_file)
    assert sent(crossref_server) == [("/works", dict(parse_qsl(urlsplit(recorded_url).query)))]
    assert batch.papers == parse(cr_dir, recorded_file).papers


def test_member_and_prefix_routes(cr_dir, crossref_server, client):
    page = Reply(200, (cr_dir / "cr_works-2.json").read_bytes())
    crossref_server.answer("/members/311/works", {"rows": "3", "cursor": "*"}, page)
    crossref_server.answer("/prefixes/10.1111/works", {"filter": "type:journal-article,type:posted-content",
                                                       "rows": "3", "cursor": "*"}, page)
    assert len(client.member_works(311, rows=3).papers) == 3
    assert len(client.prefix_works("10.1111", rows=3, filter={"type": ["journal-article", "posted-content"]}).papers) == 3
    with pytest.raises(FeedError, match="Crossref has no member 1") as caught:
        client.member_works("1")
    assert caught.value.url == crossref_server.url("/members/1/works?rows=100&cursor=%2A")


def test_mailto_rows_cap_and_select(cr_dir, crossref_server):
    params = {"query": "ecology", "rows": "1000", "select": "DOI,title,author", "cursor": "*"}
    crossref_server.answer("/works", params, Reply(200, (cr_dir / CURSOR_PAGES[0]).read_bytes()))
    with PoliteClient(user_agent="AcademicHub-tests", retries=0) as http:
        client = CrossrefClient(http, crossref_server.url(""), mailto="radar@example.org")
        client.works(query="ecology", rows=5000, select=["title", "author"])
    ((path, query),) = sent(crossref_server)
    assert query == {**params, "mailto": "radar@example.org"}


def test_bad_arguments_are_refused_before_any_request(crossref_server, client):
    with pytest.raises(SourceError, match="filter name"):
        client.works(filter={"has orcid": True})
    with pytest.raises(SourceError, match="cannot contain a comma"):
        client.works(filter={"doi": "10.1/a,b"})
    with pytest.raises(SourceError, match="from-index-date must be YYYY, YYYY-MM or YYYY-MM-DD"):
        client.journal_works("1574-6941", from_index_date="yesterday")
    with pytest.raises(SourceError, match="not a usable journal id"):
        client.journal_works("1574-6941/../x")
    with pytest.raises(SourceError, match="rows must not be negative"):
        client.works(rows=-1)
    with pytest.raises(SourceError, match="rows must be at least 1"):
        next(client.iter_pages(query="x", rows=0))
    with pytest.raises(SourceError, match="at most one of"):
        next(client.iter_pages(issn="1574-6941", prefix="10.1111"))
    with pytest.raises(SourceError, match="empty DOI"):
        client.work("https://doi.org/")
    assert crossref_server.requests == []


def test_429_with_retry_after_is_waited_out(cr_dir, crossref_server, client, sleeps):
    crossref_server.answer(
        "/works/10.1038/nnano.2014.279", {},
        Reply(429, b"Too Many Requests", {"Retry-After": "7"}),
        Reply(200, (cr_dir / "cr_works-10.json").read_bytes()),
    )
    paper = client.work("10.1038/nnano.2014.279")
    assert paper.title == "Charges ride the spin wave"
    assert sleeps == [7.0]
    assert len(crossref_server.requests) == 2


def test_server_errors_after_retries_stay_http_errors(crossref_server, client, sleeps):
    crossref_server.answer("/works/10.1/busy", {}, Reply(503, b"Service Unavailable"))
    with pytest.raises(HTTPStatusError, match="HTTP 503 after 3 attempts") as caught:
        client.work("10.1/busy")
    assert not isinstance(caught.value, FeedError)
    assert len(crossref_server.requests) == 3 and len(sleeps) == 2


def test_validation_failure_400_becomes_feed_error(crossref_server, client):
    crossref_server.answer("/works", {"filter": "nonsense:1", "rows": "100", "cursor": "*"}, Reply(400, VALIDATION_FAILURE))
    with pytest.raises(FeedError, match="Crossref refused the request: Filter nonsense specified") as caught:
        client.works(filter={"nonsense": 1})
    assert caught.value.status == 400
    assert caught.value.url.startswith(crossref_server.url("/works?filter=nonsense%3A1"))
    assert len(crossref_server.requests) == 1


def test_400_without_crossref_body_stays_an_http_error(crossref_server, client):
    crossref_server.answer("/works", {"query": "x", "rows": "100", "cursor": "*"}, Reply(400, b"Bad Request"))
    with pytest.raises(HTTPStatusError, match="HTTP 400: Bad Request") as caught:
        client.works(query="x")
    assert not isinstance(caught.value, FeedError)


# --- cursor paging --------------------------------------------------------------------------------


def walk_params(cursor: str) -> dict:
    return {"query": "ecology", "rows": "30", "cursor": cursor}


@pytest.fixture
def recorded_cursor(cr_dir) -> str:
    return dict(parse_qsl(urlsplit(recorded_requests(cr_dir)[1][2]).query))["cursor"]


def end_of_walk(cr_dir: Path) -> bytes:
    """The end of a cursor walk as Crossref documents it: the same envelope with no items. Made from
    the last recorded page (no end page was recorded)."""
    document = orjson.loads((cr_dir / CURSOR_PAGES[2]).read_bytes())
    document["message"]["items"] = []
    return orjson.dumps(document)


def test_cursor_walk_over_the_recorded_pages_to_the_end(cr_dir, crossref_server, client, recorded_cursor):
    pages = [cr_dir / name for name in CURSOR_PAGES]
    crossref_server.answer("/works", walk_params(recorded_cursor),
                           Reply(200, pages[1].read_bytes()), Reply(200, pages[2].read_bytes()),
                           Reply(200, end_of_walk(cr_dir)))
    batches = list(client.iter_pages(query="ecology", rows=30))
    assert [b.papers for b in batches] == [parse(cr_dir, name).papers for name in CURSOR_PAGES]
    # the first page is asked with "*", every later one with the cursor Crossref keeps handing back
    assert sent(crossref_server) == [("/works", walk_params(c)) for c in ["*"] + [recorded_cursor] * 3]


def test_cursor_walk_stops_when_crossref_repeats_a_page(cr_dir, crossref_server, client, recorded_cursor):
    # as recorded, then the last recorded page again for the same cursor (the server repeats it);
    # max_pages only keeps a broken guard from walking forever
    batches = list(client.iter_pages(query="ecology", rows=30, max_pages=10))
    assert [b.papers for b in batches] == [parse(cr_dir, name).papers for name in CURSOR_PAGES]
    assert len(crossref_server.requests) == 4


def test_cursor_walk_stops_after_a_short_page(cr_dir, crossref_server, client, recorded_cursor):
    short = orjson.loads((cr_dir / CURSOR_PAGES[1]).read_bytes())
    short["message"]["items"] = short["message"]["items"][:7]
    crossref_server.answer("/works", walk_params(recorded_cursor), Reply(200, orjson.dumps(short)))
    batches = list(client.iter_pages(query="ecology", rows=30))
    assert [len(b.papers) for b in batches] == [30, 7]
    assert len(crossref_server.requests) == 2


def test_cursor_walk_stops_at_the_total_and_at_max_pages(cr_dir, crossref_server, client, recorded_cursor):
    # the recorded pages, each saying there are 60 works in all
    for cursor, name in (("*", CURSOR_PAGES[0]), (recorded_cursor, CURSOR_PAGES[1])):
        page = orjson.loads((cr_dir / name).read_bytes())
        page["message"]["total-results"] = 60
        crossref_server.answer("/works", walk_params(cursor), Reply(200, orjson.dumps(page)))
    assert [len(b.papers) for b in client.iter_pages(query="ecology", rows=30)] == [30, 30]
    assert len(crossref_server.requests) == 2
    crossref_server.requests.clear()
    assert len(list(client.iter_pages(query="ecology", rows=30, max_pages=1))) == 1
    assert len(crossref_server.requests) == 1


def test_cursor_walk_over_a_journal(cr_dir, crossref_server, client):
    params = {"filter": "from-index-date:2024-11-28", "rows": "20", "cursor": "*"}
    crossref_server.answer("/journals/1574-6941/works", params, Reply(200, (cr_dir / JOURNAL_PAGE).read_bytes()))
    batches = list(client.iter_pages(issn="1574-6941", from_index_date=date(2024, 11, 28), rows=20))
    # a full page without a next-cursor (the recorded request asked for none): nothing to follow
    assert [len(b.papers) for b in batches] == [20]
    assert len(crossref_server.requests) == 1
