"""bioRxiv and medRxiv: /details pages parsed into one record per version, /pubs links, the refusals
that come with HTTP 200, and the client against the local server (paging by what each page held
until the total, 429 with Retry-After, arguments refused before any request).

NO bioRxiv or medRxiv response was recorded in ../shared/data. Every fixture below is hand-written
in the response shape documented at https://api.biorxiv.org (a `messages` list whose first entry
has status, interval, cursor, count and total, then the `collection`); the DOIs, names and texts
are invented. Numbers in `messages` are written both as numbers and as strings, as the live API
mixes them."""

from __future__ import annotations

import json
from datetime import date
from urllib.parse import parse_qsl, urlsplit

import pytest
from localserver import LocalServer, Reply

from academichub.errors import FeedError, ParseError, SourceError
from academichub.model import AuthorData, RelationData, VersionData
from academichub.sources.biorxiv import (
    BiorxivClient,
    PreprintLink,
    category_title,
    clean_abstract,
    parse_details,
    parse_pubs,
)
from academichub.sources.http import PoliteClient

JSON = {"Content-Type": "application/json; charset=UTF-8"}


def item(**fields) -> dict:
    """A /details collection item with every documented field; the keyword arguments override."""
    base = {
        "doi": "10.1101/2024.10.30.000001",
        "title": "Invented title",
        "authors": "Doe, J.",
        "author_corresponding": "Jane Doe",
        "author_corresponding_institution": "Invented Institute",
        "date": "2024-11-01",
        "version": "1",
        "type": "new results",
        "license": "cc_by",
        "category": "neuroscience",
        "jatsxml": "https://www.biorxiv.org/content/early/2024/11/01/2024.10.30.000001.source.xml",
        "abstract": "An invented abstract.",
        "funder": "NA",
        "published": "NA",
        "server": "bioRxiv",
    }
    return {**base, **fields}


def page(items: list[dict], *, cursor, total, interval: str = "2024-11-01:2024-11-02") -> bytes:
    message = {"status": "ok", "category": "all", "interval": interval, "cursor": cursor, "count": len(items),
               "count_new_papers": str(sum(i["version"] == "1" for i in items)), "total": total}
    return json.dumps({"messages": [message], "collection": items}).encode()


V1 = item(
    doi="10.1101/2024.10.30.000001",
    title="Invented: grid cells\n  in the  dark",
    authors="M\u00fcller, A.; Smith, J. A.; van der Berg, K.;",
    author_corresponding="Jane A. Smith",
    author_corresponding_institution="University of Nowhere",
    date="2024-11-01",
    version="1",
    abstract="Grid cells keep firing\n in darkness.",
)
V2 = {**V1, "date": "2024-11-02", "version": "2", "license": "cc_by_nc_nd",
      "published": "10.1016/J.NEURON.2025.01.001", "abstract": "Grid cells keep firing in darkness; revised."}
FLATTENED = item(
    doi="10.1101/2024.10.31.000002",
    title="Invented: sound symbolism in macaques",
    authors="Rossi, M.; Xu, C.",
    author_corresponding="Chen Xu",
    author_corresponding_institution="NA",
    category="animal behavior and cognition",
    license="cc_no",
    date="2024-11-02",
    abstract="AO_SCPCAPBSTRACTC_SCPCAP Shapes and sounds match.\n\nHighlightsO_LIFirst point.\nC_LIO_LISecond point."
             "\nC_LI\n\nO_FIG O_LINKSMALLFIG WIDTH=200 HEIGHT=72 SRC=\"FIGDIR/small/000002v1_ufig1.gif\""
             " ALT=\"Figure 1\">"
             "\nView larger version (22K):\norg.highwire.dtl.DTLVardef@f10d08\nC_FIG Closing sentence.",
)
PAGE_0 = page([V1, V2, FLATTENED], cursor=0, total="5")
PAGE_1 = page(
    [item(doi="10.1101/2024.11.01.000003", version="1", category="pharmacology and toxicology", date="2024-11-02",
          authors="Okafor, C.; Genomics UK Consortium", author_corresponding="Chidi Okafor",
          published="10.7554/eLife.90001"),
     item(doi="10.1101/2024.11.01.000004", version="3", category="Bioinformatics", date="2024-11-02",
          authors="", author_corresponding="", author_corresponding_institution="")],
    cursor="3", total=5,
)
MEDRXIV_PAGE = page(
    [item(doi="10.1101/2024.10.29.24316001", server="medRxiv", category="infectious diseases (except hiv/aids)",
          type="PUBLISHAHEADOFPRINT", license="cc_by_nd", authors="Nguyen, T. H.; Adeyemi, O.",
          author_corresponding="Thi Hoa Nguyen", author_corresponding_institution="Invented Hospital",
          jatsxml="https://www.medrxiv.org/content/early/2024/11/01/2024.10.29.24316001.source.xml")],
    cursor=0, total=1,
)
NO_POSTS = b'{"messages":[{"status":"no posts found"}],"collection":[]}'
PUBS_PAGE = json.dumps({
    "messages": [{"status": "ok", "interval": "2024-11-01:2024-11-02", "cursor": 0, "count": 2, "total": "3"}],
    "collection": [
        {"preprint_doi": "10.1101/2024.06.01.000010", "published_doi": "10.1091/MBC.E24-09-0001",
         "published_journal": "Molecular Biology of the Cell", "preprint_platform": "bioRxiv",
         "preprint_title": "Invented", "preprint_authors": "Zhao, Y.; Li, W.", "preprint_category": "cell biology",
         "preprint_date": "2024-06-03", "published_date": "2024-11-01", "preprint_abstract": "Invented.",
         "preprint_author_corresponding": "Wei Li", "preprint_author_corresponding_institution": "Invented U"},
        # the field name the API documentation still uses
        {"biorxiv_doi": "10.1101/2024.05.20.000011", "published_doi": "10.1038/s41467-024-00011-2",
         "published_journal": "Nature Communications", "preprint_platform": "bioRxiv",
         "preprint_date": "2024-05-21", "published_date": "2024-11-02"},
    ],
}).encode()
PUBS_LAST = json.dumps({
    "messages": [{"status": "ok", "interval": "2024-11-01:2024-11-02", "cursor": "2", "count": 1, "total": 3}],
    "collection": [{"preprint_doi": "10.1101/2024.04.02.000012", "published_doi": "10.7554/elife.90002",
                    "published_journal": "eLife", "published_date": "2024-11-02"}],
}).encode()


@pytest.fixture(scope="module")
def first_page():
    return parse_details(PAGE_0, "details-page-0.json", "biorxiv")


# --- parsing -----------------------------------------------------------------------------------------


def test_page_counts_total_and_cursor(first_page):
    assert (len(first_page.papers), first_page.total_results, first_page.start_index) == (3, 5, 0)
    second = parse_details(PAGE_1, "details-page-1.json", "biorxiv")
    assert (len(second.papers), second.total_results, second.start_index) == (2, 5, 3)  # numbers given as strings


def test_one_record_per_version(first_page):
    v1, v2, _ = first_page.papers
    assert (v1.source, v1.source_id, v1.doi, v1.versions) == (
        "biorxiv", "10.1101/2024.10.30.000001v1", "10.1101/2024.10.30.000001", [VersionData(1)])
    assert (v2.source_id, v2.doi, v2.versions) == ("10.1101/2024.10.30.000001v2", v1.doi, [VersionData(2)])
    assert (v1.published, v2.published) == (date(2024, 11, 1), date(2024, 11, 2))
    assert (v1.license, v2.license) == ("cc_by", "cc_by_nc_nd")
    assert v1.url_abs == "https://www.biorxiv.org/content/10.1101/2024.10.30.000001v1"
    assert v2.url_pdf == "https://www.biorxiv.org/content/10.1101/2024.10.30.000001v2.full.pdf"


def test_published_version_is_a_preprint_of_relation(first_page):
    v1, v2, flattened = first_page.papers
    assert v2.relations == [RelationData("preprint-of", "doi", "10.1016/j.neuron.2025.01.001")]
    assert v1.relations == [] and flattened.relations == []  # "NA"


def test_fields_of_a_version(first_page):
    v1 = first_page.papers[0]
    assert v1.title == "Invented: grid cells in the dark"
    assert v1.abstract == "Grid cells keep firing in darkness."
    assert (v1.work_type, v1.server, v1.subjects) == ("preprint", "biorxiv", [("biorxiv", "Neuroscience")])
    assert (v1.arxiv_id, v1.categories, v1.citation_count, v1.submitted) == (None, [], None, None)


def test_authors_in_order_with_the_corresponding_institution(first_page):
    assert first_page.papers[0].authors == [
        AuthorData("A. Müller"), AuthorData("J. A. Smith", "University of Nowhere"), AuthorData("K. van der Berg"),
    ]
    # "NA" is no institution
    assert first_page.papers[2].authors == [AuthorData("M. Rossi"), AuthorData("C. Xu")]


def test_raw_keeps_the_corresponding_author_and_rederives_nothing_lost(first_page):
    raw = first_page.papers[0].raw
    corresponding = (raw["author_corresponding"], raw["author_corresponding_institution"])
    assert corresponding == ("Jane A. Smith", "University of Nowhere")
    assert raw["jatsxml"].endswith("000001.source.xml") and raw["type"] == "new results"
    for paper in first_page.papers:
        assert json.loads(json.dumps(paper.raw)) == paper.raw
        again = parse_details(json.dumps({"messages": [{"status": "ok"}], "collection": [paper.raw]}).encode(),
                              "raw", "biorxiv")
        assert again.papers == [paper]


def test_flattening_markers_are_taken_out_of_abstracts(first_page):
    assert first_page.papers[2].abstract == (
        "ABSTRACT Shapes and sounds match. Highlights First point. Second point. Closing sentence."
    )
    assert clean_abstract(None) == ""


def test_category_titles_as_on_the_sites(first_page):
    assert first_page.papers[2].subjects == [("biorxiv", "Animal Behavior and Cognition")]
    assert category_title("pharmacology and toxicology") == "Pharmacology and Toxicology"
    assert category_title("infectious diseases (except hiv/aids)") == "Infectious Diseases (except HIV/AIDS)"
    assert category_title("endocrinology (including diabetes mellitus and metabolic disease)") == (
        "Endocrinology (including Diabetes Mellitus and Metabolic Disease)")
    assert category_title("Bioinformatics") == "Bioinformatics"  # already capitalised: left alone


def test_names_without_a_comma_and_empty_fields():
    third, fourth = parse_details(PAGE_1, "details-page-1.json", "biorxiv").papers
    assert third.authors == [AuthorData("C. Okafor", "Invented Institute"), AuthorData("Genomics UK Consortium")]
    assert third.relations == [RelationData("preprint-of", "doi", "10.7554/elife.90001")]
    assert third.subjects == [("biorxiv", "Pharmacology and Toxicology")]
    assert (fourth.source_id, fourth.authors, fourth.subjects) == (
        "10.1101/2024.11.01.000004v3", [], [("biorxiv", "Bioinformatics")])


def test_medrxiv_item():
    [paper] = parse_details(MEDRXIV_PAGE, "medrxiv.json", "medrxiv").papers
    assert (paper.source, paper.server, paper.source_id) == ("medrxiv", "medrxiv", "10.1101/2024.10.29.24316001v1")
    assert paper.url_abs == "https://www.medrxiv.org/content/10.1101/2024.10.29.24316001v1"
    assert paper.subjects == [("medrxiv", "Infectious Diseases (except HIV/AIDS)")]
    assert paper.authors == [AuthorData("T. H. Nguyen", "Invented Hospital"), AuthorData("O. Adeyemi")]
    assert (paper.work_type, paper.raw["type"]) == ("preprint", "PUBLISHAHEADOFPRINT")


def test_no_posts_found_is_an_empty_batch():
    batch = parse_details(NO_POSTS, "empty.json", "medrxiv")
    assert (batch.papers, batch.total_results, batch.start_index) == ([], 0, None)
    assert parse_pubs(b'{"messages":[{"status":"no articles found for published version of "}],"collection":[]}',
                      "pubs.json") == ([], 0)


@pytest.mark.parametrize(
    "payload, error, message",
    [
        (b'{"messages":[{"status":"error","interval":"2024-13-01:2024-11-02"}],"collection":[]}', FeedError,
         "bioRxiv API refused the request: error"),
        (b"", ParseError, "empty response"),  # the API has answered 200 with no body
        (b'{"collection": []}', ParseError, "no 'messages'"),
        (b'{"messages":[{"status":"ok"}],\n"collection": [}', ParseError, "malformed JSON"),
        (page([item(version="v1")], cursor=0, total=1), ParseError, "version is not a number"),
        (page([item(date="01/11/2024")], cursor=0, total=1), ParseError, "bad 10.1101/2024.10.30.000001: date"),
        (page([item(doi="")], cursor=0, total=1), ParseError, "without a doi"),
        (page([item()], cursor=0, total="many"), ParseError, "total is not a number"),
    ],
)
def test_refusals_and_broken_documents_name_the_location(payload, error, message):
    with pytest.raises(error, match=message) as caught:
        parse_details(payload, "https://api.biorxiv.org/details/biorxiv/x", "biorxiv")
    assert "https://api.biorxiv.org/details/biorxiv/x" in str(caught.value)


def test_pubs_links():
    links, total = parse_pubs(PUBS_PAGE, "pubs.json")
    assert total == 3
    assert links == [
        PreprintLink("10.1101/2024.06.01.000010", "10.1091/mbc.e24-09-0001", "Molecular Biology of the Cell",
                     date(2024, 11, 1)),
        PreprintLink("10.1101/2024.05.20.000011", "10.1038/s41467-024-00011-2", "Nature Communications",
                     date(2024, 11, 2)),
    ]
    with pytest.raises(ParseError, match="without both DOIs"):
        parse_pubs(json.dumps({"messages": [{"status": "ok"}], "collection": [{"published_doi": "10.1/x"}]}).encode(),
                   "pubs.json")


# --- the client against the local server ------------------------------------------------------------


@pytest.fixture
def client(server, sleeps):
    http = PoliteClient(user_agent="AcademicHub-tests", retries=2, sleep=sleeps.append)
    yield BiorxivClient(http, base_url=server.url(""))
    http.close()


def paths(server) -> list[str]:
    return [path for path, _headers in server.requests]


def test_details_requests_the_documented_url(server, client):
    server.route("/details/medrxiv/2024-11-01/2024-11-01/0", body=MEDRXIV_PAGE, headers=JSON)
    batch = client.details("medrxiv", date(2024, 11, 1), "2024-11-01")
    assert paths(server) == ["/details/medrxiv/2024-11-01/2024-11-01/0"]
    assert [p.source_id for p in batch.papers] == ["10.1101/2024.10.29.24316001v1"]


def test_iter_details_pages_by_what_each_page_held_until_the_total(server, client):
    server.route("/details/biorxiv/2024-11-01/2024-11-02/0", body=PAGE_0, headers=JSON)
    server.route("/details/biorxiv/2024-11-01/2024-11-02/3", body=PAGE_1, headers=JSON)
    pages = list(client.iter_details("biorxiv", date(2024, 11, 1), date(2024, 11, 2)))
    assert paths(server) == ["/details/biorxiv/2024-11-01/2024-11-02/0", "/details/biorxiv/2024-11-01/2024-11-02/3"]
    assert [len(p.papers) for p in pages] == [3, 2]
    assert [p.source_id for page in pages for p in page.papers] == [
        "10.1101/2024.10.30.000001v1", "10.1101/2024.10.30.000001v2", "10.1101/2024.10.31.000002v1",
        "10.1101/2024.11.01.000003v1", "10.1101/2024.11.01.000004v3",
    ]


def test_iter_details_of_an_empty_range_asks_once(server, client):
    server.route("/details/biorxiv/2024-12-25/2024-12-25/0", body=NO_POSTS, headers=JSON)
    assert list(client.iter_details("biorxiv", "2024-12-25", "2024-12-25")) == []
    assert len(server.requests) == 1


def test_details_of_one_category(server, client):
    server.route("/details/biorxiv/2024-11-01/2024-11-02/0", body=page([FLATTENED], cursor=0, total=1), headers=JSON)
    list(client.iter_details("biorxiv", "2024-11-01", "2024-11-02", category="Animal Behavior and Cognition"))
    assert dict(parse_qsl(urlsplit(paths(server)[0]).query)) == {"category": "animal_behavior_and_cognition"}


def test_refusal_with_status_200_is_a_feed_error_naming_the_url(server, client):
    server.route("/details/biorxiv/2024-11-01/2024-11-02/0", headers=JSON,
                 body=b'{"messages":[{"status":"error: invalid interval"}],"collection":[]}')
    with pytest.raises(FeedError, match="invalid interval") as caught:
        client.details("biorxiv", "2024-11-01", "2024-11-02")
    assert caught.value.url == server.url("/details/biorxiv/2024-11-01/2024-11-02/0")


def test_429_is_retried_after_retry_after(server, client, sleeps):
    server.route("/details/biorxiv/2024-11-01/2024-11-02/0", responses=[
        Reply(429, b"Too Many Requests", {"Retry-After": "4"}), Reply(200, PAGE_0, JSON)])
    batch = client.details("biorxiv", "2024-11-01", "2024-11-02")
    assert len(batch.papers) == 3 and sleeps == [4.0] and len(server.requests) == 2


def test_server_errors_after_retries_are_a_source_error(server, client, sleeps):
    server.route("/details/biorxiv/2024-11-01/2024-11-02/0", status=503, body=b"Service Unavailable")
    with pytest.raises(SourceError, match="HTTP 503 after 3 attempts") as caught:
        client.details("biorxiv", "2024-11-01", "2024-11-02")
    assert caught.value.status == 503 and len(sleeps) == 2


def test_bad_arguments_are_refused_before_any_request(server, client):
    with pytest.raises(FeedError, match="server must be one of biorxiv, medrxiv"):
        client.details("arxiv", "2024-11-01", "2024-11-02")
    with pytest.raises(FeedError, match="after to_date"):
        client.details("biorxiv", "2024-11-02", "2024-11-01")
    with pytest.raises(FeedError, match="not a date"):
        client.pubs("biorxiv", "2024-11", "2024-11-02")
    with pytest.raises(FeedError, match="cursor"):
        client.details("biorxiv", "2024-11-01", "2024-11-02", cursor=-1)
    with pytest.raises(FeedError, match="server must be one of"):
        parse_details(PAGE_0, "x", "bioRxiv")
    assert server.requests == []


def test_pubs_and_iter_pubs(server, client):
    server.route("/pubs/biorxiv/2024-11-01/2024-11-02/0", body=PUBS_PAGE, headers=JSON)
    server.route("/pubs/biorxiv/2024-11-01/2024-11-02/2", body=PUBS_LAST, headers=JSON)
    first = client.pubs("biorxiv", "2024-11-01", "2024-11-02")
    assert [link.preprint_doi for link in first] == ["10.1101/2024.06.01.000010", "10.1101/2024.05.20.000011"]
    server.requests.clear()
    every = list(client.iter_pubs("biorxiv", "2024-11-01", "2024-11-02"))
    assert [link.published_doi for link in every] == [
        "10.1091/mbc.e24-09-0001", "10.1038/s41467-024-00011-2", "10.7554/elife.90002"]
    assert paths(server) == ["/pubs/biorxiv/2024-11-01/2024-11-02/0", "/pubs/biorxiv/2024-11-01/2024-11-02/2"]
