"""OpenAlex: the recorded work parsed field by field, the recorded author, institution and source
entities refused as works (and the source read as a venue), and the client against the local
server: filters, cursor paging to the end, error bodies, 429 with Retry-After, venue by ISSN.

No list response was recorded: the list pages here are built from the recorded work W2741809807
(copied under other ids) in the shape OpenAlex documents for /works (meta.count, meta.next_cursor,
results)."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from localserver import LocalServer, Reply

from academichub.errors import FeedError, ParseError, SourceError
from academichub.model import AuthorData
from academichub.sources.http import HTTPStatusError, PoliteClient
from academichub.sources.openalex import (
    OpenAlexClient,
    filter_param,
    parse_source,
    parse_work,
    parse_works,
    rebuild_abstract,
)

WORK_FILE = "W2741809807.json"
SOURCE_FILE = "S137773608.json"
OTHER_ENTITIES = {"A5023888391.json": "author", "I27837315.json": "institution", SOURCE_FILE: "source"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def openalex_dir(shared_data) -> Path:
    return shared_data / "openalex"


@pytest.fixture(scope="module")
def work_json(openalex_dir) -> dict:
    return json.loads((openalex_dir / WORK_FILE).read_bytes())


@pytest.fixture(scope="module")
def work(openalex_dir):
    path = openalex_dir / WORK_FILE
    batch = parse_works(path.read_bytes(), str(path))
    assert len(batch.papers) == 1
    return batch.papers[0]


def test_every_recorded_file_is_covered(openalex_dir):
    assert {p.name for p in openalex_dir.iterdir()} == {WORK_FILE, *OTHER_ENTITIES}


# --- the recorded work ----------------------------------------------------------------------------


def test_work_identifiers(work):
    assert (work.source, work.source_id, work.openalex_id) == ("openalex", "W2741809807", "W2741809807")
    assert work.doi == "10.7717/peerj.4375"
    assert (work.pmid, work.pmcid) == ("29456894", "PMC5815332")
    assert work.arxiv_id is None and work.arxiv_version is None  # no arxiv.org location, not an arXiv DOI
    assert work.s2_id is None


def test_work_title_venue_and_dates(work):
    assert work.title == (
        "The state of OA: a large-scale analysis of the prevalence and impact of Open Access articles"
    )
    assert (work.venue, work.publisher, work.issns) == ("PeerJ", "PeerJ, Inc.", ["2167-8359"])
    assert work.work_type == "article"
    assert work.published == date(2018, 2, 13)
    assert (work.submitted, work.announced, work.updated) == (None, None, None)
    assert work.citation_count == 962
    assert work.license == "cc-by"
    assert work.url_abs == "https://doi.org/10.7717/peerj.4375"
    assert work.url_pdf == "https://peerj.com/articles/4375.pdf"
    assert (work.categories, work.versions, work.relations, work.server, work.tldr) == ([], [], [], None, None)


def test_work_abstract_is_rebuilt_in_order(work):
    assert work.abstract.startswith(
        "Despite growing interest in Open Access (OA) to scholarly literature, there is an unmet need for "
        "large-scale, up-to-date, and reproducible studies assessing the prevalence and characteristics of OA."
    )
    assert "(1) all journal articles assigned a Crossref DOI, (2) recent journal articles indexed" in work.abstract
    assert work.abstract.endswith("as a way to inform OA policy and practice.")
    assert len(work.abstract.split(" ")) == 258  # positions 0..257, none missing


def test_work_authors_in_order_with_orcid_and_first_institution(work):
    assert [a.name for a in work.authors] == [
        "Heather Piwowar", "Jason Priem", "Vincent Larivière", "Juan Pablo Alperín", "Lisa Matthias",
        "Bree Norlander", "Ashley Farley", "Jevin D. West", "Stefanie Haustein",
    ]
    assert work.authors[0] == AuthorData(
        "Heather Piwowar", "Impact Technology Development (United States)", "0000-0003-1613-5981"
    )
    # two institutions: the first one listed
    assert work.authors[2] == AuthorData("Vincent Larivière", "Université de Montréal", "0000-0002-2733-0689")
    assert work.authors[-1] == AuthorData(
        "Stefanie Haustein", "Université du Québec à Montréal", "0000-0003-0157-1430"
    )
    assert all(a.orcid and not a.orcid.startswith("http") for a in work.authors)


def test_work_subjects_primary_topic_first_and_keywords(work):
    assert work.subjects == [
        ("openalex", "scientometrics and bibliometrics research"),
        ("openalex", "Academic Publishing and Open Access"),
        ("openalex", "Research Data Management Practices"),
    ]
    assert work.keywords == ["Scholarly Communication", "Web of science", "Open Science", "Citation analysis"]


def test_work_raw_is_json_and_rederives_the_record(work, work_json):
    assert json.loads(json.dumps(work.raw)) == work.raw
    assert work.raw["type_crossref"] == "journal-article"
    assert "referenced_works" not in work.raw and "counts_by_year" not in work.raw  # not needed to re-derive
    assert parse_work(work.raw, "raw") == work
    assert parse_work(work_json, "dict") == work


def test_rebuild_abstract_puts_words_at_their_positions():
    assert rebuild_abstract({"b": [1, 3], "a": [0], "c": [2]}) == "a b c b"
    assert rebuild_abstract(None) == rebuild_abstract({}) == ""


# --- variants built from the recorded work (the recorded one has no arXiv link and has topics) ------


def test_arxiv_id_from_an_arxiv_location(work_json):
    variant = copy.deepcopy(work_json)
    variant["locations"].append({"landing_page_url": "http://arxiv.org/abs/1705.10311v3", "pdf_url": None})
    assert parse_work(variant, "variant").arxiv_id == "1705.10311"
    variant["locations"][-1] = {"landing_page_url": None, "pdf_url": "https://arxiv.org/pdf/hep-th/9901001v2.pdf"}
    assert parse_work(variant, "variant").arxiv_id == "hep-th/9901001"
    variant["locations"][-1] = {"landing_page_url": "https://arxiv.org/list/cs/new", "pdf_url": None}
    assert parse_work(variant, "variant").arxiv_id is None


def test_arxiv_id_from_arxivs_datacite_doi(work_json):
    variant = copy.deepcopy(work_json)
    variant["doi"] = "https://doi.org/10.48550/arXiv.2411.17700"
    paper = parse_work(variant, "variant")
    assert (paper.doi, paper.arxiv_id) == ("10.48550/arxiv.2411.17700", "2411.17700")


def test_concepts_stand_in_for_missing_topics_without_zero_scores(work_json):
    variant = copy.deepcopy(work_json)
    variant["primary_topic"], variant["topics"] = None, []
    subjects = [name for _scheme, name in parse_work(variant, "variant").subjects]
    assert subjects[:3] == ["Citation", "License", "Scholarly communication"]
    assert len(subjects) == 16 and "Law" not in subjects  # three concepts scored 0.0


def test_missing_optional_fields_are_fine(work_json):
    # what `select=id,title` returns
    paper = parse_work({"id": work_json["id"], "title": work_json["title"]}, "selected")
    assert (paper.source_id, paper.title, paper.abstract, paper.authors) == ("W2741809807", work_json["title"], "", [])
    assert (paper.doi, paper.venue, paper.published, paper.citation_count, paper.issns) == (None, None, None, None, [])


def test_repository_host_is_not_a_publisher(work_json):
    variant = copy.deepcopy(work_json)
    variant["primary_location"] = variant["locations"][3]  # PubMed Central, hosted by the NIH (an institution)
    paper = parse_work(variant, "variant")
    assert (paper.venue, paper.publisher, paper.issns) == ("PubMed Central", None, [])


# --- entities that are not works --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OTHER_ENTITIES))
def test_other_entities_are_refused_as_works(openalex_dir, name):
    path = openalex_dir / name
    kind = OTHER_ENTITIES[name]
    with pytest.raises(ParseError, match=f"not an OpenAlex work: {path.stem} is an OpenAlex {kind}") as caught:
        parse_works(path.read_bytes(), str(path))
    assert caught.value.location == str(path) and str(path) in str(caught.value)
    with pytest.raises(ParseError, match=str(path)):
        parse_work(json.loads(path.read_bytes()), str(path))


def test_source_entity_as_a_venue(openalex_dir):
    path = openalex_dir / SOURCE_FILE
    assert parse_source(json.loads(path.read_bytes()), str(path)) == {
        "openalex_id": "S137773608",
        "display_name": "Nature",
        "issn_l": "0028-0836",
        "issn": ["0028-0836", "1476-4687"],
        "type": "journal",
        "host_organization": "P4310319908",
        "host_organization_name": "Nature Portfolio",
        "homepage_url": "https://www.nature.com/nature/",
    }


def test_a_work_is_refused_as_a_source(openalex_dir, work_json):
    with pytest.raises(ParseError, match="W2741809807 is an OpenAlex work"):
        parse_source(work_json, str(openalex_dir / WORK_FILE))


@pytest.mark.parametrize(
    "payload, message",
    [(b"", "empty response"), (b'{"id": "https://openalex.org/W1",\n "title": }', "malformed JSON"),
     (b"[1, 2]", "expected a JSON object"), (b'{"id": "https://example.org/W1"}', "not an OpenAlex id")],
)
def test_broken_documents_name_the_location(payload, message):
    with pytest.raises(ParseError, match=message) as caught:
        parse_works(payload, "page.json")
    assert caught.value.location == "page.json"
    if message == "malformed JSON":
        assert caught.value.line == 2


def test_error_document_is_a_feed_error():
    # The error shape OpenAlex documents (no error response was recorded).
    body = b'{"error": "Invalid query parameters error.", "message": "filter is not a valid field"}'
    with pytest.raises(FeedError, match="Invalid query parameters error.: filter is not a valid field"):
        parse_works(body, "https://api.openalex.org/works?filter=x")


# --- the client against the local server ------------------------------------------------------------


def list_page(works: list[dict], count: int, next_cursor: str | None, per_page: int) -> bytes:
    return json.dumps({
        "meta": {"count": count, "db_response_time_ms": 12, "page": None, "per_page": per_page,
                 "next_cursor": next_cursor, "groups_count": None},
        "results": works,
        "group_by": [],
    }).encode()


def work_copy(work_json: dict, number: int) -> dict:
    """The recorded work under another id, so that pages can be told apart."""
    variant = copy.deepcopy(work_json)
    variant["id"] = f"https://openalex.org/W{number}"
    return variant


@pytest.fixture
def client(server, sleeps):
    http = PoliteClient(user_agent="AcademicHub-tests", retries=2, sleep=sleeps.append)
    yield OpenAlexClient(http, base_url=server.url(""), mailto="radar@example.org")
    http.close()


def sent(server) -> list[dict[str, str]]:
    return [dict(parse_qsl(urlsplit(path).query)) for path, _headers in server.requests]


@pytest.fixture
def paged_works(server, work_json):
    """/works answers three pages of one work each, chained by cursor."""
    pages = {
        "*": list_page([work_copy(work_json, 1)], 3, "IlsxNzAwXSI=", 1),
        "IlsxNzAwXSI=": list_page([work_copy(work_json, 2)], 3, "IlsxNzAxXSI=", 1),
        "IlsxNzAxXSI=": list_page([work_copy(work_json, 3)], 3, None, 1),
    }

    def answer(raw_path: str, headers: dict) -> Reply:
        cursor = dict(parse_qsl(urlsplit(raw_path).query)).get("cursor")
        if cursor not in pages:
            return Reply(400, b'{"error": "Invalid cursor", "message": "cursor is not valid"}', JSON)
        return Reply(200, pages[cursor], JSON)

    server.route("/works", handler=answer)
    return pages


def test_works_sends_the_filter_string_and_paging(server, client, work_json):
    server.route("/works", body=list_page([work_json], 1, None, 200), headers=JSON)
    batch = client.works(
        {"primary_location.source.issn": "0028-0836", "from_publication_date": "2024-11-01"},
        select=["title", "doi"],
    )
    assert sent(server) == [{
        "filter": "primary_location.source.issn:0028-0836,from_publication_date:2024-11-01",
        "per-page": "200", "cursor": "*", "select": "id,title,doi", "mailto": "radar@example.org",
    }]
    assert [p.source_id for p in batch.papers] == ["W2741809807"]
    assert (batch.total_results, batch.resumption_token) == (1, None)


def test_iter_pages_follows_the_cursor_to_the_end(server, client, paged_works):
    pages = list(client.iter_pages({"primary_location.source.id": "S137773608"}, per_page=1))
    assert [[p.source_id for p in page.papers] for page in pages] == [["W1"], ["W2"], ["W3"]]
    assert [page.total_results for page in pages] == [3, 3, 3]
    assert [page.resumption_token for page in pages] == ["IlsxNzAwXSI=", "IlsxNzAxXSI=", None]
    assert [q["cursor"] for q in sent(server)] == ["*", "IlsxNzAwXSI=", "IlsxNzAxXSI="]
    assert {q["filter"] for q in sent(server)} == {"primary_location.source.id:S137773608"}


def test_iter_pages_stops_at_the_limit(server, client, paged_works):
    pages = list(client.iter_pages({"topics.id": "T10102"}, per_page=1, limit=2))
    assert len(pages) == 2 and len(server.requests) == 2
    server.requests.clear()
    list(client.iter_pages({"topics.id": "T10102"}, per_page=200, limit=3))
    assert [q["per-page"] for q in sent(server)] == ["3", "2", "1"]  # never more than is still wanted


def test_iter_pages_stops_at_an_empty_page_and_a_repeated_cursor(server, client, work_json):
    # an empty page (with a cursor) ends the iteration; so does a cursor that points to itself
    server.route("/works", body=list_page([], 5, "more", 1), headers=JSON)
    assert list(client.iter_pages({"topics.id": "T10102"})) == []
    server.route("/works", responses=[Reply(200, list_page([work_json], 5, "same", 1), JSON)])
    pages = list(client.iter_pages({"topics.id": "T10102"}))
    assert len(pages) == 2 and [q["cursor"] for q in sent(server)] == ["*", "*", "same"]


def test_bad_arguments_are_refused_before_any_request(server, client):
    with pytest.raises(FeedError, match="at least one filter"):
        client.works({})
    with pytest.raises(FeedError, match="bad OpenAlex filter"):
        client.works({"from_publication_date": "2024-11-01,type:article"})
    with pytest.raises(FeedError, match="bad OpenAlex filter"):
        client.works({"bad key": "x"})
    with pytest.raises(FeedError, match="per_page"):
        client.works({"type": "article"}, per_page=201)
    with pytest.raises(FeedError, match="not an ISSN"):
        client.source_by_issn("0028-083")
    assert server.requests == []
    assert filter_param({"type": "article|preprint"}) == "type:article|preprint"  # OR stays inside a value


def test_error_body_becomes_a_feed_error(server, client):
    # The error shape OpenAlex documents (no error response was recorded).
    body = b'{"error": "Invalid query parameters error.", "message": "nope.id is not a valid field."}'
    server.route("/works", status=403, body=body, headers=JSON)
    with pytest.raises(FeedError, match="nope.id is not a valid field") as caught:
        client.works({"nope.id": "1"})
    assert caught.value.status == 403
    assert caught.value.url.startswith(server.url("/works?filter=nope.id%3A1"))
    assert isinstance(caught.value.__cause__, HTTPStatusError)
    assert len(server.requests) == 1


def test_error_without_a_json_body_stays_an_http_error(server, client):
    server.route("/works", status=404, body=b"Not Found")
    with pytest.raises(SourceError, match="HTTP 404: Not Found") as caught:
        client.works({"type": "article"})
    assert not isinstance(caught.value, FeedError)


def test_429_is_retried_after_retry_after(server, client, sleeps, work_json):
    server.route("/works", responses=[
        Reply(429, b'{"error": "Rate limit exceeded"}', {"Retry-After": "3", **JSON}),
        Reply(200, list_page([work_json], 1, None, 200), JSON),
    ])
    batch = client.works({"type": "article"})
    assert [p.source_id for p in batch.papers] == ["W2741809807"]
    assert sleeps == [3.0] and len(server.requests) == 2


def test_429_that_never_ends_is_a_source_error(server, client, sleeps):
    server.route("/works", status=429, body=b'{"error": "Rate limit exceeded"}', headers={"Retry-After": "1"})
    with pytest.raises(SourceError, match="HTTP 429 after 3 attempts") as caught:
        client.works({"type": "article"})
    assert caught.value.status == 429 and sleeps == [1.0, 1.0]


def test_source_by_issn(server, client, openalex_dir):
    server.route("/sources/issn:0028-0836", body=(openalex_dir / SOURCE_FILE).read_bytes(), headers=JSON)
    venue = client.source_by_issn("00280836")  # the hyphen is put back
    assert (venue["openalex_id"], venue["display_name"], venue["issn_l"]) == ("S137773608", "Nature", "0028-0836")
    assert urlsplit(server.requests[0][0]).path == "/sources/issn:0028-0836"
    assert client.source_by_issn("1476-468x") is None  # not routed: 404
    assert urlsplit(server.requests[1][0]).path == "/sources/issn:1476-468X"
