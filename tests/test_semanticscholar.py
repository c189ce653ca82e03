"""Semantic Scholar: every recorded response (two search pages and a recommendation list, asked for
the title alone) parsed with exact expectations; the client's requests compared with the recorded
ones; search paging, error bodies, 429 with Retry-After; the POST endpoints (batch lookup and
recommendations) through PoliteClient.post_json.

Full paper objects and the batch answer were not recorded: those fixtures are written from the
API's documentation (https://api.semanticscholar.org/api-docs/graph), and say so."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from localserver import LocalServer, Reply

from academichub.errors import ConfigError, FeedError, ParseError, SourceError
from academichub.model import AuthorData, PaperData
from academichub.sources.http import Fetched, HTTPStatusError, PoliteClient
from academichub.sources.semanticscholar import (
    MAX_BATCH_IDS,
    SemanticScholarClient,
    lookup_id,
    parse_batch,
    parse_paper,
    parse_response,
)

SEARCH_PATH = "/graph/v1/paper/search"
BATCH_PATH = "/graph/v1/paper/batch"
RECOMMEND_PATH = "/recommendations/v1/papers/"
PAGE_0 = "test_search_paper_next_page-0.json"
PAGE_1 = "test_search_paper_next_page-1.json"
RECOMMENDED = "test_get_recommended_papers_from_lists-0.json"
JSON = {"Content-Type": "application/json"}

# file -> (papers, total, offset, next offset as resumption_token)
EXPECTED = {
    PAGE_0: (100, 70498, 0, "100"),
    PAGE_1: (100, 70498, 100, "200"),
    RECOMMENDED: (100, None, None, None),
}
# file -> {index: (paperId, title)}
NAMED = {
    PAGE_0: {
        0: ("7cbc2a7843411a1768ab762930707af0a3c33a19",
            "Using DeepSpeed and Megatron to Train Megatron-Turing NLG 530B, A Large-Scale Generative Language Model"),
        1: ("6b0f06617d9f5256a80ed62d9398acb92a55a6bd",
            "Quantum theory, the Church–Turing principle and the universal quantum computer"),
        99: ("85b093fad42e510598da9a6bb8e81375016ce98c",
             "Feedback, receptor clustering, and receptor restriction to single cells yield large Turing spaces "
             "for ligand-receptor-based Turing models."),
    },
    PAGE_1: {
        0: ("ac7a3d2983b75bd4f44903892a5df295a0f859ff", "How to Run Turing Machines on Encrypted Data"),
        99: ("f2acd4ed92017a31222358c0076ccc98e753de0d",
             "An Experimental Design Method Leading to Chemical Turing Patterns"),
    },
    RECOMMENDED: {
        0: ("df02b0118f4d23c7dcdc7ef22b15bdd6302e8da2", "The path sequence of a graph"),
        99: ("d5a6eba2e2a4e819d2aba846a43531733360aa0f",
             "BINARY FRUIT FLY OPTIMIZATION ALGORITHM FOR COUNTING THE NUMBER OF SPANNING TREES IN NETWORKS"),
    },
}


@pytest.fixture(scope="module")
def s2_dir(shared_data) -> Path:
    return shared_data / "semanticscholar"


def parse(s2_dir: Path, name: str):
    path = s2_dir / name
    return parse_response(path.read_bytes(), str(path))


def recorded_requests(s2_dir: Path) -> dict[str, tuple[int, str, str]]:
    """urls.tsv: file -> (HTTP status, method, URL)."""
    lines = (s2_dir / "urls.tsv").read_text().splitlines()
    assert lines[0] == "file\tstatus\trequest"
    rows = {}
    for line in lines[1:]:
        name, status, request = line.split("\t")
        method, url = request.split(" ", 1)
        rows[name] = (int(status), method, url)
    return rows


# --- every recorded file -----------------------------------------------------------------------------


def test_the_table_covers_every_recorded_file(s2_dir):
    on_disk = {p.name for p in s2_dir.glob("*.json")}
    assert on_disk == set(EXPECTED) == set(recorded_requests(s2_dir))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_file_counts_and_invariants(s2_dir, name):
    batch = parse(s2_dir, name)
    assert (len(batch.papers), batch.total_results, batch.start_index, batch.resumption_token) == EXPECTED[name]
    assert len({p.source_id for p in batch.papers}) == len(batch.papers)
    for paper in batch.papers:
        assert paper.source == "semanticscholar"
        assert paper.source_id == paper.s2_id and re.fullmatch("[0-9a-f]{40}", paper.s2_id)
        assert paper.url_abs == f"https://www.semanticscholar.org/paper/{paper.s2_id}"
        assert paper.title and paper.title == " ".join(paper.title.split())
        assert set(paper.raw) == {"paperId", "title"}  # the recorded requests asked for the title alone
        # nothing else was asked for, so nothing else is filled
        assert (paper.abstract, paper.authors, paper.doi, paper.arxiv_id, paper.tldr, paper.citation_count,
                paper.subjects, paper.venue, paper.published) == ("", [], None, None, None, None, [], None, None)


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_records(s2_dir, name):
    papers = parse(s2_dir, name).papers
    for index, (paper_id, title) in NAMED[name].items():
        assert (papers[index].source_id, papers[index].title) == (paper_id, title)


def test_no_break_spaces_in_a_title_are_cleaned(s2_dir):
    paper = next(p for p in parse(s2_dir, PAGE_1).papers if p.s2_id == "50642580e304025d23a2e8c035262c845e037569")
    assert paper.title == (
        "The Dynamics of Turing Patterns for Morphogen-Regulated Growing Domains with Cellular Response Delays"
    )
    assert "\xa0" in paper.raw["title"]  # raw keeps what S2 said


def test_the_two_search_pages_join_up(s2_dir):
    first, second = parse(s2_dir, PAGE_0), parse(s2_dir, PAGE_1)
    assert int(first.resumption_token) == second.start_index == first.start_index + len(first.papers)
    assert not {p.s2_id for p in first.papers} & {p.s2_id for p in second.papers}


# --- full paper objects (hand-written from the API documentation: none was recorded) ------------------

# The documentation's example paper, with the fields a batch lookup asks for.
DOCUMENTED_PAPER = {
    "paperId": "649def34f8be52c8b66281af98ae884c09aef38b",
    "externalIds": {"MAG": "2963403868", "DBLP": "conf/naacl/AmmarGBBCDDEFHKL18", "ACL": "N18-3011",
                    "ArXiv": "1805.02262", "CorpusId": 19170988, "DOI": "10.18653/V1/N18-3011"},
    "url": "https://www.semanticscholar.org/paper/649def34f8be52c8b66281af98ae884c09aef38b",
    "title": "Construction of the Literature Graph in Semantic Scholar",
    "abstract": "We describe a deployed scalable system for organizing published scientific literature into a\n"
                "heterogeneous graph to facilitate algorithmic manipulation and discovery.",
    "venue": "North American Chapter of the Association for Computational Linguistics",
    "year": 2018,
    "publicationDate": "2018-05-06",
    "citationCount": 453,
    "fieldsOfStudy": ["Computer Science"],
    "s2FieldsOfStudy": [{"category": "Computer Science", "source": "external"},
                        {"category": "Computer Science", "source": "s2-fos-model"},
                        {"category": "Mathematics", "source": "s2-fos-model"}],
    "publicationTypes": ["JournalArticle", "Conference"],
    "journal": {"name": "ArXiv", "volume": "abs/1805.02262"},
    "openAccessPdf": {"url": "https://www.aclweb.org/anthology/N18-3011.pdf", "status": "HYBRID"},
    "authors": [{"authorId": "1741101", "name": "Oren Etzioni",
                 "affiliations": ["Allen Institute for AI"], "externalIds": {"ORCID": "0000-0002-1825-0097"}},
                {"authorId": "1719124", "name": "Waleed  Ammar"}],
    "tldr": {"model": "tldr@v2.0.0", "text": "This paper reduces literature graph construction into familiar\n"
                                             "NLP tasks, points out research challenges, and introduces solutions."},
}


def test_documented_paper_fills_every_field():
    paper = parse_paper(DOCUMENTED_PAPER, "documented")
    assert (paper.source_id, paper.s2_id) == ("649def34f8be52c8b66281af98ae884c09aef38b",) * 2
    assert (paper.doi, paper.arxiv_id, paper.pmid, paper.pmcid) == ("10.18653/v1/n18-3011", "1805.02262", None, None)
    assert paper.title == "Construction of the Literature Graph in Semantic Scholar"
    assert paper.abstract.startswith("We describe a deployed scalable system for organizing published scientific")
    assert "\n" not in paper.abstract
    assert paper.authors == [
        AuthorData("Oren Etzioni", "Allen Institute for AI", "0000-0002-1825-0097"), AuthorData("Waleed Ammar"),
    ]
    assert paper.venue == "North American Chapter of the Association for Computational Linguistics"
    assert (paper.published, paper.citation_count, paper.work_type) == (date(2018, 5, 6), 453, "journal-article")
    assert paper.subjects == [("s2", "Computer Science"), ("s2", "Mathematics")]
    assert paper.tldr == ("This paper reduces literature graph construction into familiar NLP tasks, points out "
                          "research challenges, and introduces solutions.")
    assert paper.url_pdf == "https://www.aclweb.org/anthology/N18-3011.pdf"
    assert paper.raw == DOCUMENTED_PAPER and json.loads(json.dumps(paper.raw)) == paper.raw
    assert parse_paper(paper.raw, "raw") == paper


def test_pubmed_ids_and_nulls():
    paper = parse_paper({
        "paperId": "0000000000000000000000000000000000000001", "title": "T",
        "externalIds": {"PubMed": "29456894", "PubMedCentral": "5815332"},
        "venue": "", "journal": {"name": "PeerJ"}, "publicationDate": None, "tldr": None,
        "fieldsOfStudy": None, "s2FieldsOfStudy": None, "authors": [], "openAccessPdf": None,
    }, "nulls")
    assert (paper.pmid, paper.pmcid, paper.venue) == ("29456894", "PMC5815332", "PeerJ")
    assert (paper.published, paper.tldr, paper.subjects, paper.url_pdf) == (None, None, [], None)


def test_a_paper_without_paper_id_is_refused():
    with pytest.raises(ParseError, match="paper without a paperId") as caught:
        parse_paper({"title": "x"}, "page.json")
    assert caught.value.location == "page.json"


def test_batch_answer_keeps_order_and_nulls():
    body = json.dumps([DOCUMENTED_PAPER, None]).encode()
    first, second = parse_batch(body, "batch", expected=2)
    assert (first.s2_id, second) == ("649def34f8be52c8b66281af98ae884c09aef38b", None)
    with pytest.raises(ParseError, match="asked for 3 papers, got 2 entries"):
        parse_batch(body, "batch", expected=3)
    with pytest.raises(ParseError, match="expected a JSON list"):
        parse_batch(b'{"data": []}', "batch")


@pytest.mark.parametrize(
    "payload, error, message",
    [(b'{"error": "Unrecognized or unsupported fields: [bogus]"}', FeedError, "Unrecognized or unsupported fields"),
     (b'{"message": "Too Many Requests. Please wait and try again or apply for a key"}', FeedError, "Too Many"),
     (b"", ParseError, "empty response"), (b'{"total": 1,\n"data": [}', ParseError, "malformed JSON"),
     (b'{"total": 0}', ParseError, "neither a search page")],
)
def test_error_bodies_and_broken_documents(payload, error, message):
    with pytest.raises(error, match=message) as caught:
        parse_response(payload, "s2.json")
    assert "s2.json" in str(caught.value)


def test_lookup_id_prefers_arxiv_then_doi_then_pmid():
    assert lookup_id(PaperData("x", "1", "t", arxiv_id="2411.17700", doi="10.1/x")) == "ARXIV:2411.17700"
    assert lookup_id(PaperData("x", "1", "t", doi="10.7717/peerj.4375", pmid="29456894")) == "DOI:10.7717/peerj.4375"
    assert lookup_id(PaperData("x", "1", "t", pmid="29456894")) == "PMID:29456894"
    assert lookup_id(PaperData("x", "1", "t")) is None


# --- the client against the local server ------------------------------------------------------------


class GetWithHeaders:
    """What PoliteClient.get lacks for a keyed search: a get() that sends headers (here straight
    through httpx, no retries); POSTs go through PoliteClient."""

    def __init__(self, polite: PoliteClient):
        self.polite = polite

    def get(self, url: str, params: dict | None = None, *, conditional: bool = True, headers: dict | None = None):
        response = httpx.get(url, params=params, headers=headers, timeout=5)
        return Fetched(str(response.url), response.status_code, response.content, response.headers)

    def post_json(self, url: str, json: dict, headers: dict | None = None) -> Fetched:
        return self.polite.post_json(url, json, headers)


@pytest.fixture
def server(module_server, s2_dir):
    """Answers the search path with the recorded file whose recorded request has the same query."""
    module_server.routes.clear()
    module_server.requests.clear()
    module_server.bodies.clear()
    by_query = {
        frozenset(parse_qsl(urlsplit(url).query)): s2_dir / name
        for name, (_status, method, url) in recorded_requests(s2_dir).items()
        if method == "GET"
    }

    def answer(raw_path: str, headers: dict) -> Reply:
        path = by_query.get(frozenset(parse_qsl(urlsplit(raw_path).query)))
        if path is None:
            return Reply(404, b'{"error": "no recorded response"}', JSON)
        return Reply(200, path.read_bytes(), JSON)

    module_server.route(SEARCH_PATH, handler=answer)
    return module_server


@pytest.fixture
def http(sleeps):
    polite = PoliteClient(user_agent="AcademicHub-tests", retries=2, sleep=sleeps.append)
    yield polite
    polite.close()


@pytest.fixture
def client(server, http):
    return SemanticScholarClient(http, base_url=server.url(""))


def sent(server) -> list[tuple[str, str]]:
    return [(urlsplit(path).path, urlsplit(path).query) for path, _headers in server.requests]


def test_search_sends_the_recorded_request(s2_dir, server, client):
    batch = client.search("turing", fields="title")
    recorded = urlsplit(recorded_requests(s2_dir)[PAGE_0][2])
    assert sent(server) == [(recorded.path, recorded.query)]  # byte for byte, order included
    assert batch == parse(s2_dir, PAGE_0)
    assert "x-api-key" not in {k.lower() for k in server.requests[0][1]}


def test_default_fields_ask_for_what_the_parser_reads(server, client):
    with pytest.raises(FeedError, match="no recorded response"):  # not recorded: the server's 404
        client.search("turing")
    fields = dict(parse_qsl(sent(server)[0][1]))["fields"].split(",")
    assert {"paperId", "externalIds", "title", "abstract", "authors", "citationCount", "s2FieldsOfStudy"} <= set(fields)
    assert "tldr" not in fields  # the search endpoint refuses it


def test_iter_search_follows_next(s2_dir, server, client):
    pages = list(client.iter_search("turing", fields="title", limit=200))
    assert [p.start_index for p in pages] == [0, 100]
    assert [dict(parse_qsl(q))["offset"] for _path, q in sent(server)] == ["0", "100"]
    assert [p.s2_id for page in pages for p in page.papers] == [
        p.s2_id for name in (PAGE_0, PAGE_1) for p in parse(s2_dir, name).papers
    ]


def test_iter_search_stops_where_next_is_missing(s2_dir, server, client):
    # S2 leaves out "next" on the last page; this one is the recorded second page with "next" removed.
    last = json.loads((s2_dir / PAGE_1).read_bytes())
    del last["next"]
    server.route(SEARCH_PATH + "?query=turing&fields=title&offset=100&limit=100", body=json.dumps(last).encode())
    pages = list(client.iter_search("turing", fields="title"))
    assert [(p.start_index, p.resumption_token) for p in pages] == [(0, "100"), (100, None)]
    assert len(server.requests) == 2


def test_search_refusal_becomes_a_feed_error(server, client):
    server.route(SEARCH_PATH, status=400, headers=JSON,
                 body=b'{"error": "Requested data for this limit and/or offset is not available"}')
    with pytest.raises(FeedError, match="limit and/or offset is not available") as caught:
        client.search("turing", offset=9990, limit=100)
    assert caught.value.status == 400 and isinstance(caught.value.__cause__, HTTPStatusError)
    assert len(server.requests) == 1


def test_search_429_is_retried_after_retry_after(s2_dir, server, client, sleeps):
    server.route(SEARCH_PATH, responses=[
        Reply(429, b'{"message": "Too Many Requests"}', {"Retry-After": "5", **JSON}),
        Reply(200, (s2_dir / PAGE_0).read_bytes(), JSON),
    ])
    batch = client.search("turing", fields="title")
    assert len(batch.papers) == 100 and sleeps == [5.0] and len(server.requests) == 2


def test_search_429_every_time_stays_an_http_error(server, client, sleeps):
    server.route(SEARCH_PATH, status=429, body=b'{"message": "Too Many Requests"}', headers={"Retry-After": "2"})
    with pytest.raises(SourceError, match="HTTP 429 after 3 attempts") as caught:
        client.search("turing")
    assert not isinstance(caught.value, FeedError) and sleeps == [2.0, 2.0]


def test_bad_arguments_are_refused_before_any_request(server, client):
    with pytest.raises(FeedError, match="empty search query"):
        client.search("  ")
    with pytest.raises(FeedError, match="limit 1..100"):
        client.search("turing", limit=101)
    with pytest.raises(FeedError, match="not a Semantic Scholar paper id"):
        client.papers_batch(["DOI:10.1/x", ""])
    with pytest.raises(FeedError, match="at least one positive"):
        client.recommendations([])
    assert server.requests == []


def test_papers_batch_posts_ids_in_chunks_and_keeps_order(s2_dir, server, client):
    # The batch answer is built from the recorded search page: known paperIds come back as recorded,
    # the rest as null, one entry per id asked for, as the documentation describes.
    recorded = {p["paperId"]: p for p in json.loads((s2_dir / PAGE_0).read_bytes())["data"]}
    server.route(BATCH_PATH, handler=lambda raw_path, headers: Reply(
        200, json.dumps([recorded.get(i) for i in json.loads(server.bodies[-1])["ids"]]).encode(), JSON))
    known = list(recorded)[:3]
    ids = [known[0], "DOI:10.7717/peerj.4375", *[f"ARXIV:2411.{n:05d}" for n in range(MAX_BATCH_IDS - 2)], known[1]]
    assert len(ids) == MAX_BATCH_IDS + 1

    papers = client.papers_batch(ids, fields="title")
    assert len(papers) == len(ids)
    assert (papers[0].s2_id, papers[0].title) == (known[0], recorded[known[0]]["title"])
    assert papers[1] is None and papers[-2] is None
    assert papers[-1].s2_id == known[1]
    bodies = [json.loads(body) for body in server.bodies]
    assert [len(body["ids"]) for body in bodies] == [MAX_BATCH_IDS, 1]
    assert bodies[0]["ids"][:2] == ids[:2] and bodies[1] == {"ids": [known[1]]}
    assert sent(server) == [(BATCH_PATH, "fields=title")] * 2


def test_papers_batch_asks_for_tldr_by_default(server, client):
    server.route(BATCH_PATH, body=json.dumps([DOCUMENTED_PAPER]).encode(), headers=JSON)
    [paper] = client.papers_batch(["ARXIV:1805.02262"])
    assert paper.tldr.startswith("This paper reduces literature graph construction")
    assert "tldr" in dict(parse_qsl(sent(server)[0][1]))["fields"].split(",")


def test_papers_batch_refusal_becomes_a_feed_error(server, client):
    server.route(BATCH_PATH, status=400, headers=JSON, body=b'{"error": "Unrecognized or unsupported fields: [x]"}')
    with pytest.raises(FeedError, match=r"Unrecognized or unsupported fields: \[x\]") as caught:
        client.papers_batch(["DOI:10.1/x"], fields="x")
    assert caught.value.status == 400


def test_recommendations_send_the_recorded_request(s2_dir, server, client):
    _status, method, url = recorded_requests(s2_dir)[RECOMMENDED]
    assert method == "POST"
    recorded = urlsplit(url)
    server.route(recorded.path, body=(s2_dir / RECOMMENDED).read_bytes(), headers=JSON)
    seeds = ["649def34f8be52c8b66281af98ae884c09aef38b"]
    batch = client.recommendations(seeds, fields="title", limit=100)
    assert sent(server) == [(recorded.path, recorded.query)]
    assert [json.loads(body) for body in server.bodies] == [{"positivePaperIds": seeds, "negativePaperIds": []}]
    assert [p.s2_id for p in batch.papers] == [p.s2_id for p in parse(s2_dir, RECOMMENDED).papers]


def test_papers_batch_429_is_retried_after_retry_after(server, client, sleeps):
    server.route(BATCH_PATH, responses=[
        Reply(429, b'{"message": "Too Many Requests"}', {"Retry-After": "6", **JSON}),
        Reply(200, json.dumps([DOCUMENTED_PAPER]).encode(), JSON),
    ])
    [paper] = client.papers_batch(["ARXIV:1805.02262"])
    assert paper.arxiv_id == "1805.02262" and sleeps == [6.0]
    assert [json.loads(body) for body in server.bodies] == [{"ids": ["ARXIV:1805.02262"]}] * 2


def api_keys_sent(server) -> list[str | None]:
    return [{k.lower(): v for k, v in headers.items()}.get("x-api-key") for _path, headers in server.requests]


def test_api_key_goes_in_a_header_and_nowhere_else(server, http):
    client = SemanticScholarClient(http, base_url=server.url(""), api_key="s3cret-key")
    assert "s3cret-key" not in repr(client)
    server.route(BATCH_PATH, body=b"[null]", headers=JSON)
    assert client.papers_batch(["DOI:10.1/x"]) == [None]
    server.route(RECOMMEND_PATH, body=b'{"recommendedPapers": []}', headers=JSON)
    assert client.recommendations(["649def34f8be52c8b66281af98ae884c09aef38b"]).papers == []
    assert api_keys_sent(server) == ["s3cret-key"] * 2
    assert not any("s3cret" in path for path, _headers in server.requests)


def test_keyed_search_needs_a_get_that_sends_headers(server, http):
    keyed = SemanticScholarClient(http, base_url=server.url(""), api_key="s3cret-key")
    with pytest.raises(ConfigError, match="needs an HTTP client whose get\\(\\) can send headers"):
        keyed.search("turing", fields="title")  # PoliteClient.get cannot
    assert server.requests == []
    batch = SemanticScholarClient(GetWithHeaders(http), base_url=server.url(""), api_key="s3cret-key").search(
        "turing", fields="title")
    assert len(batch.papers) == 100 and api_keys_sent(server) == ["s3cret-key"]
    assert "s3cret" not in server.requests[0][0]
