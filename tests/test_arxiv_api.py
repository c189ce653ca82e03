"""arXiv query API: every recorded response parsed with exact expectations, the client's requests
compared with the recorded ones, paging over the recorded `testing` pages, the error feed, and the
pre-2025 layout (hand-written fixture: no old-layout response was recorded)."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from localserver import LocalServer, Reply

from academichub.errors import FeedError, ParseError, SourceError
from academichub.model import AuthorData, VersionData
from academichub.sources.arxiv_api import ArxivApiClient, parse_api, search_category, undo_double_decoding
from academichub.sources.http import HTTPStatusError, PoliteClient

API_PATH = "/api/query"
ERROR_FILE = "id_abc_s0_m100_b79c8dcf6bc3.xml"
ZERO_FILE = "id_0000.0000_s0_m100_8b51d9633a68.xml"
BIG_PAGE = "q_testing_s0_m100_cfe7536492ca.xml"
RELEVANCE = {"sort_by": "relevance", "sort_order": "descending"}  # what every recorded request sent

# file -> (entries, opensearch totalResults, opensearch startIndex); the error feed is tested apart.
EXPECTED_COUNTS = {
    "id_0000.0000_s0_m100_8b51d9633a68.xml": (0, 0, 0),
    "id_0808.05394_1707.08567_s0_m100_42e5aa0ec3af.xml": (1, 1, 0),
    "id_0808.05394_s0_m100_7b0c7d0a7cdd.xml": (0, 0, 0),
    "id_1605.08386_s0_m100_199195aa31ad.xml": (1, 1, 0),
    "id_1707.08567_s0_m100_6a1afebfc6a3.xml": (1, 1, 0),
    "id_2104.12255v1_s0_m100_6ae69987ffe1.xml": (1, 1, 0),
    "id_astro-ph_0601001_s0_m100_3150dca9dc76.xml": (1, 1, 0),
    "id_quant-ph_0201082v1_s0_m100_86989fe779ef.xml": (1, 1, 0),
    "q_testing_s0_m100_cfe7536492ca.xml": (100, 214881, 0),
    "q_testing_s0_m10_bc5a6c384fe9.xml": (10, 214881, 0),
    "q_testing_s0_m15_80c242b59d59.xml": (15, 214881, 0),
    "q_testing_s10_m10_34e56e15aaac.xml": (10, 214881, 10),
    "q_testing_s20_m10_348a237fecab.xml": (10, 214881, 20),
    "q_testing_s30_m10_f2e39f0143dc.xml": (10, 214881, 30),
    "q_testing_s40_m10_96dd32eb854c.xml": (10, 214881, 40),
    "q_testing_s50_m10_7f488ab8598c.xml": (10, 214881, 50),
    "q_testing_s5_m10_c0e94a259d4a.xml": (10, 214881, 5),
    "q_testing_s5_m15_bbcf6b23085b.xml": (15, 214881, 5),
    "q_testing_s9_m15_0b78d4b4d476.xml": (15, 214881, 9),
}


@pytest.fixture(scope="module")
def api_dir(shared_data) -> Path:
    return shared_data / "arxiv" / "api"


def parse(api_dir: Path, name: str):
    path = api_dir / name
    return parse_api(path.read_bytes(), str(path))


def the_paper(api_dir: Path, name: str):
    batch = parse(api_dir, name)
    assert len(batch.papers) == 1
    return batch.papers[0]


def recorded_requests(api_dir: Path) -> list[tuple[str, int, str]]:
    """urls.tsv: (file, HTTP status, URL) per recorded request."""
    lines = (api_dir / "urls.tsv").read_text().splitlines()
    assert lines[0] == "file\tstatus\turl"
    return [(f, int(s), u) for f, s, u in (line.split("\t") for line in lines[1:])]


# --- every recorded file -------------------------------------------------------------------------


def test_the_table_covers_every_recorded_file(api_dir):
    on_disk = {p.name for p in api_dir.glob("*.xml")}
    assert on_disk == set(EXPECTED_COUNTS) | {ERROR_FILE}
    assert {f for f, _, _ in recorded_requests(api_dir)} == on_disk


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_recorded_file_counts_and_invariants(api_dir, name):
    batch = parse(api_dir, name)
    entries, total, start = EXPECTED_COUNTS[name]
    assert (len(batch.papers), batch.total_results, batch.start_index) == (entries, total, start)
    for paper in batch.papers:
        assert paper.source == "arxiv-api"
        assert paper.source_id == f"{paper.arxiv_id}v{paper.arxiv_version}"
        assert paper.url_abs == f"https://arxiv.org/abs/{paper.arxiv_id}"
        assert paper.url_pdf == f"https://arxiv.org/pdf/{paper.source_id}"
        assert paper.categories and paper.categories[0] == paper.raw["primary_category"]
        assert len(paper.categories) == len(set(paper.categories))
        assert paper.versions == [VersionData(paper.arxiv_version, paper.updated)]
        assert paper.submitted <= paper.updated and paper.submitted.tzinfo is None
        for text in (paper.title, paper.abstract):
            assert text and text == text.strip() and "\n" not in text and "  " not in text
        # doubly decoded UTF-8 ("WÃ¼bben") is repaired everywhere
        for text in [paper.title, paper.abstract, paper.comments or "", *(a.name for a in paper.authors)]:
            assert not re.search("[\u00c2-\u00f4][\u0080-\u00bf]", text), text
        json.dumps(paper.raw)  # raw goes into a JSON column


def test_error_feed_raises_feed_error_with_arxivs_reason(api_dir):
    path = api_dir / ERROR_FILE
    with pytest.raises(FeedError, match="incorrect id format for abc") as caught:
        parse_api(path.read_bytes(), str(path))
    assert caught.value.url == str(path)
    assert str(path) in str(caught.value)


def test_zero_results_is_an_empty_batch_not_an_error(api_dir):
    batch = parse(api_dir, ZERO_FILE)
    assert (batch.papers, batch.total_results, batch.start_index) == ([], 0, 0)


def test_unknown_id_in_a_list_is_just_missing(api_dir):
    # 0808.05394 does not exist: alone it gives nothing, with 1707.08567 only the latter comes back
    assert parse(api_dir, "id_0808.05394_s0_m100_7b0c7d0a7cdd.xml").papers == []
    both = the_paper(api_dir, "id_0808.05394_1707.08567_s0_m100_42e5aa0ec3af.xml")
    alone = the_paper(api_dir, "id_1707.08567_s0_m100_6a1afebfc6a3.xml")
    assert both == alone


# --- named entries --------------------------------------------------------------------------------


def test_new_style_id_with_two_categories(api_dir):
    paper = the_paper(api_dir, "id_1605.08386_s0_m100_199195aa31ad.xml")
    assert (paper.source_id, paper.arxiv_id, paper.arxiv_version) == ("1605.08386v1", "1605.08386", 1)
    assert paper.title == "Heat-bath random walks with Markov bases"
    assert paper.authors == [AuthorData("Caprice Stanley"), AuthorData("Tobias Windisch")]
    assert paper.categories == ["math.CO", "math.ST"]
    assert (paper.doi, paper.journal_ref, paper.comments) == (None, None, "20 pages, 3 figures")
    assert paper.submitted == paper.updated == datetime(2016, 5, 26, 17, 59, 46)
    assert paper.abstract.startswith("Graphs on lattice points are studied whose edges come from")
    assert (paper.url_abs, paper.url_pdf) == ("https://arxiv.org/abs/1605.08386", "https://arxiv.org/pdf/1605.08386v1")


def test_old_style_id_with_affiliations_and_journal_ref(api_dir):
    paper = the_paper(api_dir, "id_astro-ph_0601001_s0_m100_3150dca9dc76.xml")
    assert (paper.source_id, paper.arxiv_id, paper.arxiv_version) == ("astro-ph/0601001v1", "astro-ph/0601001", 1)
    assert paper.title.startswith("Frequency of Hot Jupiters and Very Hot Jupiters from the OGLE-III")
    assert paper.authors == [
        AuthorData("Andrew Gould", "Ohio State"),
        AuthorData("Susan Dorsher", "Ohio State"),
        AuthorData("B. Scott Gaudi", "CfA"),
        AuthorData("Andrzej Udalski", "Warsaw University Observatory"),
    ]
    assert paper.categories == ["astro-ph"]
    assert paper.journal_ref == "ActaAstron.56:1-50,2006"
    assert paper.comments.startswith("62 pages including 16 figures and 9 tables.")
    assert paper.doi is None
    assert paper.submitted == datetime(2006, 1, 2, 14, 57, 58)
    # the summary starts with two spaces upstream; the raw record keeps them, the abstract does not
    assert paper.raw["summary"].startswith("  We derive")
    assert paper.abstract.startswith("We derive the frequencies of hot Jupiters (HJs) with 3--5 day periods")
    assert "V_max<17.5" in paper.abstract and "(1^{+1.39}_{-0.59})" in paper.abstract  # entities decoded, TeX kept
    assert paper.url_pdf == "https://arxiv.org/pdf/astro-ph/0601001v1"


def test_old_style_id_asked_with_version(api_dir):
    paper = the_paper(api_dir, "id_quant-ph_0201082v1_s0_m100_86989fe779ef.xml")
    assert paper.source_id == "quant-ph/0201082v1"
    assert paper.categories == ["quant-ph", "cs.PL"]
    assert paper.authors == [AuthorData("Stephen Blaha")]
    assert paper.comments == "32 pages"
    assert paper.abstract.startswith("We show a representation of Quantum Computers defines Quantum Turing Machines")


def test_title_zero_is_a_title(api_dir):
    paper = the_paper(api_dir, "id_2104.12255v1_s0_m100_6ae69987ffe1.xml")
    assert (paper.source_id, paper.title) == ("2104.12255v1", "0")
    assert paper.abstract.startswith("What is the funniest number in cryptography? 0.")
    assert paper.categories == ["cs.CR"] and paper.comments is None


def test_long_author_list_with_mojibake_repaired(api_dir):
    paper = the_paper(api_dir, "id_1707.08567_s0_m100_6a1afebfc6a3.xml")
    assert paper.title == "Proceedings of Workshop AEW10: Concepts in Information Theory and Communications"
    assert len(paper.authors) == 34
    assert paper.authors[0].name == "Kees A. Schouhamer Immink"
    assert paper.authors[32].name == "Dirk Wübben"  # recorded as "Dirk WÃ¼bben"
    assert paper.authors[-1].name == "Hirosuke Yamamoto"
    assert paper.comments == "44 pages, editors for the proceedings: Yanling Chen and A. J. Han Vinck"
    assert paper.categories == ["cs.IT"]


def test_double_decoding_repair_leaves_real_text_alone():
    assert undo_double_decoding("Dirk WÃ¼bben") == "Dirk Wübben"
    for text in ("Dirk Wübben", "José Raúl Romero", "Przemysław Olbratowski", "$\\alpha$-model", "Ã"):
        assert undo_double_decoding(text) == text


def test_double_decoding_is_repaired_before_whitespace_is_folded(api_dir):
    # "Å" and "à" end in the bytes 0x85 and 0xA0, which read as Latin-1 are NEL and NO-BREAK SPACE,
    # both whitespace to clean_text. No recorded name has them, so one is written into a recorded entry.
    doubly = "Åsa Lindà".encode("utf-8").decode("latin-1").encode("utf-8")
    content = (api_dir / "id_1605.08386_s0_m100_199195aa31ad.xml").read_bytes().replace(b"Caprice Stanley", doubly)
    assert parse_api(content, "edited.xml").papers[0].authors[0].name == "Åsa Lindà"


def test_named_entries_of_the_hundred_result_page(api_dir):
    papers = parse(api_dir, BIG_PAGE).papers
    assert sum(p.doi is not None for p in papers) == 32
    assert sum(p.journal_ref is not None for p in papers) == 18
    assert sum(p.comments is not None for p in papers) == 97
    assert sum(p.arxiv_version > 1 for p in papers) == 36
    assert sum(len(p.authors) for p in papers) == 366

    first = papers[0]
    assert first.source_id == "2202.12139v1"
    assert first.title.startswith("Testing Deep Learning Models: A First Comparative Study")
    assert first.authors[0] == AuthorData("Mohit Kumar Ahuja")
    assert first.categories == ["cs.SE", "cs.LG"]
    assert first.doi == "10.1109/ICSTW55395.2022.00035"
    assert first.journal_ref.startswith("Artificial Intelligence in Software Testing @ 2022 IEEE")
    assert first.abstract.startswith("Deep Learning (DL) has revolutionized the capabilities")

    assert [a.name for a in papers[1].authors] == [
        "Aurora Ramírez", "Mario Berrios", "José Raúl Romero", "Robert Feldt"
    ]
    assert papers[22].title == "$ω$Test: WebView-Oriented Testing for Android Applications"  # LaTeX kept as written
    assert papers[29].authors[1].name == "Oliver Weißl"
    assert papers[79].categories == ["cs.DM", "cs.CE", "cs.DS", "cs.IT", "math.CO", "q-bio.QM"]

    gaudel = papers[81]
    assert gaudel.source_id == "0804.0970v1"
    assert gaudel.authors == [AuthorData("Marie-Claude Gaudel", "LRI"), AuthorData("Pascale Le Gall", "IBISC")]

    anarchy = papers[88]
    assert (anarchy.source_id, anarchy.arxiv_version) == ("hep-ph/0301050v2", 2)
    assert anarchy.title == "Statistical Test of Anarchy"
    assert anarchy.submitted == datetime(2003, 1, 8, 20, 15, 43)
    assert anarchy.updated == datetime(2003, 6, 30, 3, 20, 20)
    assert anarchy.versions == [VersionData(2, datetime(2003, 6, 30, 3, 20, 20))]
    assert anarchy.doi == "10.1016/j.physletb.2003.08.045"
    assert anarchy.journal_ref == "Phys.Lett.B573:94-100,2003"
    assert anarchy.abstract.startswith('"Anarchy" is the hypothesis that there is no fundamental distinction')

    assert papers[99].comments.startswith("in: ''Gyros, Clocks, and Interferometers...")
    assert "(C. Lämmerzahl, C.W.F. Everitt" in papers[99].comments


def test_recorded_pages_join_up_with_the_hundred_result_page(api_dir):
    hundred = [p.source_id for p in parse(api_dir, BIG_PAGE).papers]
    assert len(set(hundred)) == 100
    for name in EXPECTED_COUNTS:
        if name.startswith("q_testing_") and name != BIG_PAGE:
            batch = parse(api_dir, name)
            start = batch.start_index
            assert [p.source_id for p in batch.papers] == hundred[start : start + len(batch.papers)], name


# --- the pre-2025 layout --------------------------------------------------------------------------

# Hand-written: no pre-2025 response was recorded. The first entry's metadata is arXiv 0710.2073v2 as
# the old API served it (quoted in the cl-arxiv-api README); the second is invented to put the
# primary category last among <category> and to carry a TeX-accented name and an affiliation.
OLD_LAYOUT = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <link href="http://arxiv.org/api/query?search_query%3Dau%3A%20Popolitov%26id_list%3D%26start%3D0%26max_results%3D2" rel="self" type="application/atom+xml"/>
  <title type="html">ArXiv Query: search_query=au: Popolitov&amp;id_list=&amp;start=0&amp;max_results=2</title>
  <id>http://arxiv.org/api/eqh0wUfSoqUlr9BWqd8knMzmeUA</id>
  <updated>2015-08-16T00:00:00-04:00</updated>
  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">13</opensearch:totalResults>
  <opensearch:startIndex xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">0</opensearch:startIndex>
  <opensearch:itemsPerPage xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">2</opensearch:itemsPerPage>
  <entry>
    <id>http://arxiv.org/abs/0710.2073v2</id>
    <updated>2007-10-12T11:18:49Z</updated>
    <published>2007-10-10T17:58:06Z</published>
    <title>On coincidence of Alday-Maldacena-regularized $\xcf\x83$-model and
  Nambu-Goto areas of minimal surfaces</title>
    <summary>  For the $\\sigma$-model and Nambu-Goto actions, values of the
Alday-Maldacena-regularized actions are calculated on solutions of the
equations of motion with constant non-regularized Lagrangian.
</summary>
    <author>
      <name>A. Popolitov</name>
    </author>
    <arxiv:doi xmlns:arxiv="http://arxiv.org/schemas/atom">10.1134/S0021364007210011</arxiv:doi>
    <link title="doi" href="http://dx.doi.org/10.1134/S0021364007210011" rel="related"/>
    <arxiv:comment xmlns:arxiv="http://arxiv.org/schemas/atom">3 pages, submitted to JETP Letters, corrected some misprints and
  missing factors in formulas (10) and (11)</arxiv:comment>
    <arxiv:journal_ref xmlns:arxiv="http://arxiv.org/schemas/atom">JETP Lett.86:559-561,2008</arxiv:journal_ref>
    <link href="http://arxiv.org/abs/0710.2073v2" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/0710.2073v2" rel="related" type="application/pdf"/>
    <arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="hep-th" scheme="http://arxiv.org/schemas/atom"/>
    <category term="hep-th" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
  <entry>
    <id>http://arxiv.org/abs/hep-th/9901001v3</id>
    <updated>1999-03-04T10:00:00Z</updated>
    <published>1999-01-01T09:30:00Z</published>
    <title>Invented entry: primary category listed last</title>
    <summary>
  Only the DOI link carries the DOI here.
</summary>
    <author>
      <name>J\\'er\\^ome Dupr\\'e</name>
      <arxiv:affiliation xmlns:arxiv="http://arxiv.org/schemas/atom">Universit\xc3\xa9 Paris-Sud</arxiv:affiliation>
    </author>
    <author>
      <name>Anna Nowak</name>
    </author>
    <link title="doi" href="http://dx.doi.org/10.1000/invented.1" rel="related"/>
    <link href="http://arxiv.org/abs/hep-th/9901001v3" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/hep-th/9901001v3" rel="related" type="application/pdf"/>
    <arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="hep-th" scheme="http://arxiv.org/schemas/atom"/>
    <category term="gr-qc" scheme="http://arxiv.org/schemas/atom"/>
    <category term="hep-th" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
</feed>
"""


def test_old_layout_parses_the_same_way():
    batch = parse_api(OLD_LAYOUT, "old-layout.xml")
    assert (len(batch.papers), batch.total_results, batch.start_index) == (2, 13, 0)
    first, second = batch.papers

    assert (first.source_id, first.arxiv_id, first.arxiv_version) == ("0710.2073v2", "0710.2073", 2)
    assert first.title == (
        "On coincidence of Alday-Maldacena-regularized $σ$-model and Nambu-Goto areas of minimal surfaces"
    )
    assert first.abstract.startswith("For the $\\sigma$-model and Nambu-Goto actions, values of the Alday-Maldacena")
    assert first.abstract.endswith("with constant non-regularized Lagrangian.")
    assert first.authors == [AuthorData("A. Popolitov")]
    assert first.doi == "10.1134/S0021364007210011"
    assert first.journal_ref == "JETP Lett.86:559-561,2008"
    assert first.comments.endswith("corrected some misprints and missing factors in formulas (10) and (11)")
    assert first.categories == ["hep-th"]
    assert (first.submitted, first.updated) == (datetime(2007, 10, 10, 17, 58, 6), datetime(2007, 10, 12, 11, 18, 49))
    assert (first.url_abs, first.url_pdf) == ("https://arxiv.org/abs/0710.2073", "https://arxiv.org/pdf/0710.2073v2")

    assert second.source_id == "hep-th/9901001v3"
    assert second.categories == ["hep-th", "gr-qc"]
    assert second.doi == "10.1000/invented.1"  # from <link title="doi">, resolver prefix dropped
    assert second.authors == [AuthorData("Jérôme Dupré", "Université Paris-Sud"), AuthorData("Anna Nowak")]
    assert second.abstract == "Only the DOI link carries the DOI here."
    assert second.versions == [VersionData(3, datetime(1999, 3, 4, 10, 0))]


def test_not_an_atom_feed_names_the_location(shared_data):
    path = shared_data / "arxiv" / "rss" / "empty.xml"
    with pytest.raises(ParseError, match=re.escape(str(path))) as caught:
        parse_api(path.read_bytes(), str(path))
    assert "not an Atom feed" in str(caught.value)


# --- the client against the local server ----------------------------------------------------------


def _query_key(query: str) -> frozenset:
    return frozenset(parse_qsl(query, keep_blank_values=True))


@pytest.fixture
def arxiv_server(module_server, api_dir):
    """Answers /api/query with the recorded file whose recorded request has the same parameters;
    `overrides` maps a parameter set to a Reply for the tests that need another answer."""
    local_server = module_server
    local_server.routes.clear()
    local_server.requests.clear()
    by_query = {
        _query_key(urlsplit(url).query): (status, api_dir / name) for name, status, url in recorded_requests(api_dir)
    }
    overrides: dict[frozenset, Reply] = {}

    def answer(raw_path: str, headers: dict) -> Reply:
        key = _query_key(urlsplit(raw_path).query)
        if key in overrides:
            return overrides[key]
        if key not in by_query:
            return Reply(404, b"no recorded response for " + raw_path.encode())
        status, path = by_query[key]
        return Reply(status, path.read_bytes(), {"Content-Type": "application/atom+xml; charset=utf-8"})

    local_server.route(API_PATH, handler=answer)
    local_server.overrides = overrides
    return local_server


@pytest.fixture
def api_client(arxiv_server):
    http = PoliteClient(user_agent="AcademicHub-tests", retries=0, sleep=lambda seconds: None)
    yield ArxivApiClient(http, arxiv_server.url(API_PATH))
    http.close()


def sent_queries(server) -> list[str]:
    return [urlsplit(path).query for path, _headers in server.requests]


@pytest.mark.parametrize(
    "id_list, recorded_file",
    [
        (["astro-ph/0601001"], "id_astro-ph_0601001_s0_m100_3150dca9dc76.xml"),
        (["0808.05394", "1707.08567"], "id_0808.05394_1707.08567_s0_m100_42e5aa0ec3af.xml"),
        (["arXiv:2104.12255v1"], "id_2104.12255v1_s0_m100_6ae69987ffe1.xml"),
        (["https://arxiv.org/abs/quant-ph/0201082v1"], "id_quant-ph_0201082v1_s0_m100_86989fe779ef.xml"),
    ],
)
def test_query_by_ids_sends_the_recorded_request(api_dir, arxiv_server, api_client, id_list, recorded_file):
    batch = api_client.query(id_list=id_list, **RELEVANCE)
    recorded_url = next(url for name, _, url in recorded_requests(api_dir) if name == recorded_file)
    assert sent_queries(arxiv_server) == [urlsplit(recorded_url).query]  # byte for byte, order and escaping
    assert len(batch.papers) == 1
    assert batch.papers == parse(api_dir, recorded_file).papers


def test_zero_results_through_the_client(arxiv_server, api_client):
    batch = api_client.query(id_list=["0000.0000"], **RELEVANCE)
    assert (batch.papers, batch.total_results) == ([], 0)


def test_bad_ids_are_refused_before_any_request(arxiv_server, api_client):
    with pytest.raises(FeedError, match="not an arXiv identifier: 'abc'"):
        api_client.query(id_list=["1605.08386", "abc"], **RELEVANCE)
    with pytest.raises(FeedError, match="sort_by"):
        api_client.query(search_query="testing", sort_by="newest")
    with pytest.raises(FeedError, match="id_list or search_query"):
        api_client.query()
    assert arxiv_server.requests == []


def test_http_400_with_error_feed_becomes_feed_error(api_dir, arxiv_server, api_client):
    # The recorded 400 answered id_list=abc, which our client refuses itself; serve that recorded
    # body for a search instead (the pairing is ours, the body is arXiv's).
    params = {"search_query": "ti:(", "id_list": "", "start": "0", "max_results": "10"}
    arxiv_server.overrides[frozenset(params.items())] = Reply(400, (api_dir / ERROR_FILE).read_bytes())
    with pytest.raises(FeedError, match="incorrect id format for abc") as caught:
        api_client.query(search_query="ti:(", max_results=10)
    assert caught.value.status == 400
    assert caught.value.url.startswith(arxiv_server.url(API_PATH) + "?search_query=ti%3A%28")
    assert isinstance(caught.value.__cause__, HTTPStatusError)
    assert len(arxiv_server.requests) == 1  # a 400 is not retried


def test_http_400_without_error_feed_stays_an_http_error(arxiv_server, api_client):
    params = {"search_query": "all:x", "id_list": "", "start": "0", "max_results": "100"}
    arxiv_server.overrides[frozenset(params.items())] = Reply(400, b"Bad Request")
    with pytest.raises(SourceError, match="HTTP 400: Bad Request") as caught:
        api_client.query(search_query="all:x")
    assert not isinstance(caught.value, FeedError)
    assert caught.value.status == 400


def test_paging_follows_start_and_max_results(api_dir, arxiv_server, api_client):
    pages = list(api_client.iter_pages(search_query="testing", page_size=10, limit=60, **RELEVANCE))
    assert [p.start_index for p in pages] == [0, 10, 20, 30, 40, 50]
    assert [dict(parse_qsl(q))["start"] for q in sent_queries(arxiv_server)] == ["0", "10", "20", "30", "40", "50"]
    hundred = [p.source_id for p in parse(api_dir, BIG_PAGE).papers]
    assert [paper.source_id for page in pages for paper in page.papers] == hundred[:60]


def test_paging_from_an_offset_with_a_limit(api_dir, arxiv_server, api_client):
    pages = list(api_client.iter_pages(search_query="testing", start=5, page_size=15, limit=15, **RELEVANCE))
    assert len(pages) == 1 and len(arxiv_server.requests) == 1
    assert pages[0].papers == parse(api_dir, "q_testing_s5_m15_bbcf6b23085b.xml").papers


def test_paging_stops_at_total_results(arxiv_server, api_client):
    pages = list(api_client.iter_pages(id_list=["1605.08386"], **RELEVANCE))
    assert [len(p.papers) for p in pages] == [1]
    assert len(arxiv_server.requests) == 1


def test_paging_stops_at_an_empty_page(api_dir, arxiv_server, api_client):
    # arXiv sometimes answers a page inside the range with no entries; serve the recorded
    # zero-result feed for the second page (pairing ours) and expect the iteration to end there.
    second = {"search_query": "testing", "id_list": "", "sortBy": "relevance", "sortOrder": "descending",
              "start": "10", "max_results": "10"}
    arxiv_server.overrides[frozenset(second.items())] = Reply(200, (api_dir / ZERO_FILE).read_bytes())
    pages = list(api_client.iter_pages(search_query="testing", page_size=10, **RELEVANCE))
    assert [p.start_index for p in pages] == [0]
    assert len(arxiv_server.requests) == 2


def test_search_category_builds_arxivs_date_range():
    assert search_category("cs.SE", date(2024, 11, 28), date(2024, 11, 29)) == (
        "cat:cs.SE AND submittedDate:[202411280000 TO 202411292359]"
    )
    assert ArxivApiClient.search_category("hep-th", None, None) == "cat:hep-th"
    assert search_category("math.CO", None, date(2001, 2, 3)) == (
        "cat:math.CO AND submittedDate:[199101010000 TO 200102032359]"
    )
    with pytest.raises(FeedError, match="bad arXiv category"):
        search_category("cs.SE OR all:x", None, None)
    with pytest.raises(FeedError, match="after"):
        search_category("cs.SE", date(2024, 2, 1), date(2024, 1, 1))


def test_category_search_is_sent_decoded_intact(arxiv_server, api_client, api_dir):
    query = search_category("cs.SE", date(2024, 11, 28), date(2024, 11, 28))
    params = {"search_query": query, "id_list": "", "sortBy": "submittedDate", "sortOrder": "ascending",
              "start": "0", "max_results": "50"}
    arxiv_server.overrides[frozenset(params.items())] = Reply(200, (api_dir / ZERO_FILE).read_bytes())
    batch = api_client.query(search_query=query, max_results=50, sort_by="submittedDate", sort_order="ascending")
    assert batch.papers == []
    assert dict(parse_qsl(sent_queries(arxiv_server)[0]))["search_query"] == (
        "cat:cs.SE AND submittedDate:[202411280000 TO 202411282359]"
    )
