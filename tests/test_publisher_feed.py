"""Publisher table-of-contents feeds through feedparser.

No recorded publisher feed exists in shared/data (SOURCES.md lists none), so the documents below are
small fixtures written by hand in the shapes these publishers serve: Nature's RSS 1.0/RDF with PRISM
and Dublin Core, Science's and Cell's RSS 2.0 with dc:creator, PNAS's and NEJM's Atom. Titles, names
and DOIs are made up; the element layout, the citation line in front of the abstract and the
escaping follow what the publishers' feeds carry."""

from __future__ import annotations

import json
import logging
import re
import sys
import types
from datetime import date, datetime

import pytest

from academichub.errors import ParseError
from academichub.sources.publisher_feed import FeedMapping, parse_feed

NATURE_RDF = b"""<?xml version="1.0" encoding="UTF-8"?>
<rdf:RDF xmlns="http://purl.org/rss/1.0/" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:prism="http://prismstandard.org/namespaces/basic/2.0/"
 xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<channel rdf:about="https://www.nature.com/nature.rss">
<title>Nature</title>
<link>https://www.nature.com/nature</link>
<description>Nature is the international journal of science</description>
<dc:publisher>Nature Publishing Group</dc:publisher>
<prism:publicationName>Nature</prism:publicationName>
<prism:issn>0028-0836</prism:issn>
<prism:eIssn>1476-4687</prism:eIssn>
<items><rdf:Seq>
<rdf:li rdf:resource="https://www.nature.com/articles/s41586-024-00001-a"/>
<rdf:li rdf:resource="https://www.nature.com/articles/d41586-024-00002-b"/>
</rdf:Seq></items>
</channel>
<item rdf:about="https://www.nature.com/articles/s41586-024-00001-a">
<title><![CDATA[A fixture title with <i>italic</i> genes]]></title>
<link>https://www.nature.com/articles/s41586-024-00001-a</link>
<content:encoded><![CDATA[<p>Nature, Published online: 27 November 2024; <a href="https://www.nature.com/articles/s41586-024-00001-a">doi:10.1038/s41586-024-00001-a</a></p>The fixture abstract, with <b>bold</b> words.]]></content:encoded>
<dc:title><![CDATA[A fixture title with <i>italic</i> genes]]></dc:title>
<dc:creator>Ada Lovelace</dc:creator>
<dc:creator>Charles Babbage</dc:creator>
<dc:creator>Mary Somerville</dc:creator>
<dc:identifier>doi:10.1038/s41586-024-00001-a</dc:identifier>
<dc:source>Nature, Published online: 2024-11-27; | doi:10.1038/s41586-024-00001-a</dc:source>
<dc:date>2024-11-27</dc:date>
<prism:publicationName>Nature</prism:publicationName>
<prism:doi>10.1038/S41586-024-00001-A</prism:doi>
<prism:url>https://www.nature.com/articles/s41586-024-00001-a</prism:url>
</item>
<item rdf:about="https://www.nature.com/articles/d41586-024-00002-b">
<title><![CDATA[A news item with no abstract]]></title>
<link>https://www.nature.com/articles/d41586-024-00002-b</link>
<content:encoded><![CDATA[<p>Nature, Published online: 26 November 2024; <a href="https://www.nature.com/articles/d41586-024-00002-b">doi:10.1038/d41586-024-00002-b</a></p>]]></content:encoded>
<dc:creator>Ada Lovelace</dc:creator>
<dc:identifier>doi:10.1038/d41586-024-00002-b</dc:identifier>
<dc:date>2024-11-26</dc:date>
<dc:type>News</dc:type>
</item>
</rdf:RDF>
"""

# RSS 2.0 as Cell Press serves it: one dc:creator with the whole list, no DOI element.
CELL_RSS2 = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
<title>Cell: Current Issue</title>
<link>https://www.cell.com/cell/current</link>
<description>Table of contents</description>
<item>
<title>Fixture &amp; title: a &lt;i&gt;Drosophila&lt;/i&gt; example</title>
<link>https://www.cell.com/cell/fulltext/S0092-8674(24)00001-1?rss=yes</link>
<guid isPermaLink="false">S0092-8674(24)00001-1</guid>
<description>&lt;p&gt;First paragraph.&lt;/p&gt;&lt;p&gt;Second &amp;amp; last.&lt;/p&gt;</description>
<pubDate>Thu, 28 Nov 2024 00:00:00 GMT</pubDate>
<dc:creator>Ada Lovelace, Charles Babbage and Mary Somerville</dc:creator>
<category>Neuroscience</category>
<category>Genetics</category>
</item>
<item>
<title>Second fixture</title>
<link>https://www.cell.com/cell/fulltext/S0092-8674(24)00002-3?rss=yes</link>
<guid isPermaLink="false">S0092-8674(24)00002-3</guid>
<dc:creator>Lovelace, Ada</dc:creator>
<dc:identifier>https://doi.org/10.1016/J.CELL.2024.00.002</dc:identifier>
</item>
</channel></rss>
"""

# RSS 2.0 as Science's eTOC serves it: one dc:creator per author, the DOI in dc:identifier and in the
# link's /doi/ path, the issue citation in front of the abstract, HTML escaped once.
SCIENCE_RSS2 = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:prism="http://prismstandard.org/namespaces/basic/2.0/">
<channel>
<title>Science: Table of Contents</title>
<link>https://www.science.org/journal/science</link>
<item>
<title>A fixture report on T&lt;sub&gt;c&lt;/sub&gt;</title>
<link>https://www.science.org/doi/abs/10.1126/science.fix0001?af=R</link>
<description>Science, Volume 386, Issue 6725, Page 962-967, November 2024. &lt;br/&gt;The report abstract.</description>
<dc:creator>Ada Lovelace</dc:creator>
<dc:creator>Charles Babbage; Mary Somerville</dc:creator>
<dc:date>2024-11-28T08:00:00Z</dc:date>
<dc:type>Research Article</dc:type>
<prism:publicationName>Science</prism:publicationName>
<prism:volume>386</prism:volume>
<prism:number>6725</prism:number>
<prism:startingPage>962</prism:startingPage>
<prism:endingPage>967</prism:endingPage>
</item>
</channel></rss>
"""

# Atom as PNAS and NEJM serve it: the DOI as the entry id, one <author> each.
PNAS_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>PNAS: Table of Contents</title>
<id>https://www.pnas.org/toc/pnas/current</id>
<link rel="alternate" href="https://www.pnas.org/toc/pnas/current"/>
<updated>2024-11-26T08:00:00Z</updated>
<entry>
<title type="html">A fixture with T&lt;sub&gt;c&lt;/sub&gt; &amp;amp; more</title>
<id>https://doi.org/10.1073/pnas.2400000001</id>
<link rel="alternate" href="https://www.pnas.org/doi/abs/10.1073/pnas.2400000001?af=R"/>
<author><name>Ada Lovelace</name></author>
<author><name>Charles Babbage</name></author>
<published>2024-11-25T22:30:00-05:00</published>
<updated>2024-11-26T08:00:00Z</updated>
<summary type="html">&lt;p&gt;Proceedings of the National Academy of Sciences, Volume 121, Issue 49, December 2024. &lt;br/&gt;The atom abstract.&lt;/p&gt;</summary>
<category term="Physical Sciences"/>
</entry>
<entry>
<title type="text">Plain &lt;i&gt;title&lt;/i&gt;</title>
<id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
<link rel="alternate" href="/doi/10.1056/NEJMoa2400001"/>
<author><name>Mary Somerville</name></author>
<updated>2024-11-27T10:15:00+01:00</updated>
<summary type="text">A text summary.</summary>
</entry>
</feed>
"""

ALL_FIXTURES = {"nature": NATURE_RDF, "cell": CELL_RSS2, "science": SCIENCE_RSS2, "pnas": PNAS_ATOM}
_MARKUP = re.compile(r"<[A-Za-z/!?]|&[a-z]+;|&#\d+;")


def _by_title(batch):
    return {paper.title: paper for paper in batch.papers}


def test_nature_rdf_with_prism_and_dublin_core():
    batch = parse_feed(NATURE_RDF, "https://www.nature.com/nature.rss")
    assert batch.feed.title == "Nature" and batch.feed.link == "https://www.nature.com/nature"
    first, news = batch.papers
    assert first.source == "feed"
    assert first.doi == "10.1038/s41586-024-00001-a"  # prism:doi, lower-cased
    assert first.source_id == first.doi
    assert first.title == "A fixture title with italic genes"
    assert first.abstract == "The fixture abstract, with bold words."  # citation line dropped
    assert [a.name for a in first.authors] == ["Ada Lovelace", "Charles Babbage", "Mary Somerville"]
    assert first.published == date(2024, 11, 27)
    assert first.updated is None  # dc:date is the publication day, not a modification
    assert first.venue == "Nature"
    assert first.issns == ["0028-0836", "1476-4687"]  # the channel's, for every item
    assert first.publisher == "Nature Publishing Group"
    assert first.url_abs == "https://www.nature.com/articles/s41586-024-00001-a"
    assert first.work_type == "journal-article"
    assert json.loads(json.dumps(first.raw))["prism_doi"] == "10.1038/S41586-024-00001-A"
    # a news item: the content is nothing but the citation line; dc:type says what it is
    assert news.abstract == "" and news.doi == "10.1038/d41586-024-00002-b"
    assert news.work_type == "news"


def test_cell_rss2_with_one_creator_list_and_no_doi_element():
    batch = parse_feed(CELL_RSS2, "https://www.cell.com/cell/current.rss", venue="Cell")
    first, second = batch.papers
    assert first.title == "Fixture & title: a Drosophila example"  # escaped HTML made plain
    assert "First paragraph." in first.abstract and "Second & last." in first.abstract
    assert [a.name for a in first.authors] == ["Ada Lovelace", "Charles Babbage", "Mary Somerville"]
    assert first.doi is None and first.source_id == "S0092-8674(24)00001-1"  # the guid
    assert first.venue == "Cell"  # no prism:publicationName: the caller's venue, not the feed title
    assert first.published == date(2024, 11, 28)  # pubDate
    assert first.keywords == ["Neuroscience", "Genetics"]
    # dc:identifier as a doi.org URL; "Family, Given" is one author, not two
    assert second.doi == "10.1016/j.cell.2024.00.002" and second.source_id == second.doi
    assert [a.name for a in second.authors] == ["Lovelace, Ada"]


def test_without_venue_argument_the_feed_title_is_the_venue():
    batch = parse_feed(CELL_RSS2, "cell.rss")
    assert {paper.venue for paper in batch.papers} == {"Cell: Current Issue"}


def test_science_rss2_doi_from_link_citation_line_and_pages():
    (paper,) = parse_feed(SCIENCE_RSS2, "https://www.science.org/rss/science").papers
    assert paper.doi == "10.1126/science.fix0001"  # from /doi/abs/<doi>?af=R
    assert paper.title == "A fixture report on Tc"
    assert paper.abstract == "The report abstract."
    assert [a.name for a in paper.authors] == ["Ada Lovelace", "Charles Babbage", "Mary Somerville"]
    assert paper.published == date(2024, 11, 28)
    assert paper.venue == "Science"
    assert paper.journal_ref == "Science 386(6725), 962-967"
    assert paper.work_type == "journal-article"


def test_atom_entries_dates_and_relative_links():
    batch = parse_feed(PNAS_ATOM, "https://www.pnas.org/action/showFeed?type=etoc&feed=atom&jc=pnas")
    first, second = batch.papers
    assert first.doi == "10.1073/pnas.2400000001"  # the entry id is a doi.org URL
    assert first.title == "A fixture with Tc & more"
    assert first.abstract == "The atom abstract."
    assert [a.name for a in first.authors] == ["Ada Lovelace", "Charles Babbage"]
    assert first.published == date(2024, 11, 25)  # the day as the publisher wrote it
    assert first.updated == datetime(2024, 11, 26, 8, 0)  # naive UTC
    assert first.keywords == ["Physical Sciences"]
    assert first.venue == "PNAS: Table of Contents"
    # a relative link resolves against the feed's URL, and its /doi/ path gives the DOI
    assert second.url_abs == "https://www.pnas.org/doi/10.1056/NEJMoa2400001"
    assert second.doi == "10.1056/nejmoa2400001"
    assert second.title == "Plain title"  # a text title whose tags were escaped twice
    assert second.published is None  # Atom's <updated> is not a publication date
    assert second.updated == datetime(2024, 11, 27, 9, 15)


@pytest.mark.parametrize("name", sorted(ALL_FIXTURES))
def test_titles_and_abstracts_end_as_plain_text(name):
    for paper in parse_feed(ALL_FIXTURES[name], name).papers:
        for text in (paper.title, paper.abstract, *(a.name for a in paper.authors)):
            assert not _MARKUP.search(text), text
            assert text == " ".join(text.split())
        json.dumps(paper.raw)


def test_without_jats_the_lxml_fallback_gives_plain_text(monkeypatch):
    monkeypatch.setitem(sys.modules, "academichub.sources.jats", None)  # import now raises ImportError
    for content in ALL_FIXTURES.values():
        for paper in parse_feed(content, "fixture").papers:
            assert not _MARKUP.search(paper.title + paper.abstract)
    first = parse_feed(CELL_RSS2, "fixture").papers[0]
    assert first.abstract == "First paragraph. Second & last."


def test_jats_markup_to_text_is_used_when_present(monkeypatch):
    fake = types.ModuleType("academichub.sources.jats")
    fake.markup_to_text = lambda text, drop_abstract_heading=True: "JATS:" + re.sub(r"<[^>]+>", "", text)
    monkeypatch.setitem(sys.modules, "academichub.sources.jats", fake)
    paper = parse_feed(SCIENCE_RSS2, "fixture").papers[0]
    assert paper.title.startswith("JATS:")


def test_mapping_moves_fields_and_sets_the_work_type():
    # Minimal RSS 2.0 (no recording): content:encoded holds a teaser, dc:description the abstract.
    feed = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:prism="http://prismstandard.org/namespaces/basic/2.0/">
<channel><title>Reviews</title>
<item><title>A review</title><link>https://example.org/r/1</link>
<content:encoded>Teaser.</content:encoded>
<description>The real abstract. [Boilerplate]</description>
<dc:source>10.5555/review.1</dc:source>
<prism:coverDate>2024-12-01</prism:coverDate>
</item></channel></rss>"""
    (default,) = parse_feed(feed, "reviews.rss").papers
    assert default.abstract == "Teaser." and default.doi is None and default.work_type == "journal-article"
    assert default.published == date(2024, 12, 1)  # prism:coverDate, the last resort
    mapping = FeedMapping(
        abstract_field="dc_description", doi_field="dc_source", work_type="review", abstract_drop=(r"\s*\[Boilerplate\]$",)
    )
    (mapped,) = parse_feed(feed, "reviews.rss", mapping=mapping).papers
    assert mapped.abstract == "The real abstract."
    assert mapped.doi == "10.5555/review.1"
    assert mapped.work_type == "review"


# ----------------------------------------------------------------------------- malformed documents


def test_truncated_feed_keeps_complete_entries_and_records_the_problem(caplog):
    cut = PNAS_ATOM[: PNAS_ATOM.index(b"A text summary")]
    with caplog.at_level(logging.WARNING, logger="academichub.sources.publisher_feed"):
        batch = parse_feed(cut, "https://www.pnas.org/feed")
    (paper,) = batch.papers  # the entry cut off part-way is dropped
    assert paper.doi == "10.1073/pnas.2400000001"
    assert "dropped 1 entry" in paper.raw["feed_problem"] and "line" in paper.raw["feed_problem"]
    assert "https://www.pnas.org/feed" in caplog.text and "kept 1 entries" in caplog.text


def test_feed_cut_inside_its_first_entry_is_a_parse_error():
    cut = NATURE_RDF[: NATURE_RDF.index(b"The fixture abstract")]
    with pytest.raises(ParseError, match=r"^https://www\.nature\.com/nature\.rss:\d+: malformed feed") as caught:
        parse_feed(cut, "https://www.nature.com/nature.rss")
    assert caught.value.location == "https://www.nature.com/nature.rss" and caught.value.line


@pytest.mark.parametrize(
    "content",
    [b"<html><body><p>Service unavailable</p></body></html>", b'{"error": "not a feed"}', b"  \n", b"<foo/>"],
    ids=["html-page", "json", "blank", "other-xml"],
)
def test_what_is_not_a_feed_is_a_parse_error(content):
    with pytest.raises(ParseError, match="^https://example.org/feed") as caught:
        parse_feed(content, "https://example.org/feed")
    assert caught.value.location == "https://example.org/feed"


def test_an_empty_feed_is_no_papers_not_an_error():
    empty = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Nothing this week</title></channel></rss>'
    batch = parse_feed(empty, "empty.rss")
    assert batch.papers == [] and batch.feed.title == "Nothing this week"


# ----------------------------------------------------------------------------- safety


def test_bytes_naming_a_local_file_are_not_read_as_that_file(tmp_path):
    # feedparser.parse(b"/path") opens the file; parse_feed must treat the bytes as the document.
    secret_feed = tmp_path / "feed.xml"
    secret_feed.write_bytes(NATURE_RDF)
    with pytest.raises(ParseError):
        parse_feed(str(secret_feed).encode(), "user-input")


def test_external_entities_are_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    for doctype in (
        f'<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file://{secret}">\n]>',
        f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>',
    ):
        feed = f"""<?xml version="1.0"?>{doctype}
<rss version="2.0"><channel><title>T</title><item><title>a &xxe; b</title><link>https://x.org/1</link>
<description>c &xxe; d</description></item></channel></rss>""".encode()
        for paper in parse_feed(feed, "xxe.rss").papers:
            assert "TOPSECRET" not in json.dumps(paper.raw) + paper.title + paper.abstract


def test_no_dtd_or_external_entity_is_fetched(local_server):
    local_server.route("/evil.dtd", body=b'<!ENTITY xxe "FETCHED">')
    local_server.route("/entity", body=b"FETCHED")
    feed = f"""<?xml version="1.0"?>
<!DOCTYPE rss SYSTEM "{local_server.url('/evil.dtd')}" [
<!ENTITY xxe SYSTEM "{local_server.url('/entity')}">
<!ENTITY % remote SYSTEM "{local_server.url('/evil.dtd')}">
%remote;
]>
<rss version="2.0"><channel><title>T</title><item><title>a &xxe; b</title><link>https://x.org/1</link></item>
</channel></rss>""".encode()
    batch = parse_feed(feed, "dtd.rss")
    assert local_server.requests == []
    assert all("FETCHED" not in paper.title for paper in batch.papers)


def test_billion_laughs_does_not_expand():
    feed = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
<!ENTITY a "aaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<rss version="2.0"><channel><title>T</title><item><title>x &d; y</title><link>https://x.org/1</link></item></channel></rss>"""
    for paper in parse_feed(feed, "lol.rss").papers:
        assert len(paper.title) < 100
