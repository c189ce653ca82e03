"""OPML import. No recorded OPML export exists in shared/data, so the files below are minimal ones
written from the OPML 2.0 specification (opml.org/spec2.opml) and the way feed readers export:
folders as outlines with only text, feeds as outlines with type="rss" and xmlUrl."""

from __future__ import annotations

import pytest

from academichub.errors import ParseError
from academichub.sources.opml import OpmlFeed, parse_opml

READER_EXPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My journals</title></head>
  <body>
    <outline text="Unfiled" title="Unfiled feed" type="rss" xmlUrl="https://www.nature.com/nature.rss"
             htmlUrl="https://www.nature.com/nature"/>
    <outline text="Physics">
      <outline text="PRL" type="rss" xmlUrl="https://feeds.aps.org/rss/recent/prl.xml"/>
      <outline text="Condensed matter">
        <outline text="Nature Physics" type="rss" xmlUrl=" https://www.nature.com/nphys.rss "/>
      </outline>
    </outline>
    <outline text="Medicine">
      <outline text="Nature again" type="rss" xmlUrl="https://www.nature.com/nature.rss"/>
      <outline text="NEJM" type="rss" xmlurl="https://www.nejm.org/action/showFeed?jc=nejm&amp;type=etoc&amp;feed=rss"/>
    </outline>
    <outline text="Tagged" type="rss" xmlUrl="https://example.org/tagged.xml" category="/Biology/Cells,/Other"/>
  </body>
</opml>
"""


def test_feeds_at_any_depth_with_their_folders():
    feeds = parse_opml(READER_EXPORT, "subscriptions.opml")
    assert feeds == [
        OpmlFeed("Unfiled feed", "https://www.nature.com/nature.rss", "https://www.nature.com/nature", None),
        OpmlFeed("PRL", "https://feeds.aps.org/rss/recent/prl.xml", None, "Physics"),
        OpmlFeed("Nature Physics", "https://www.nature.com/nphys.rss", None, "Physics/Condensed matter"),
        # the second Nature outline is a duplicate and is dropped; xmlurl in any letter case counts
        OpmlFeed("NEJM", "https://www.nejm.org/action/showFeed?jc=nejm&type=etoc&feed=rss", None, "Medicine"),
        OpmlFeed("Tagged", "https://example.org/tagged.xml", None, "Biology/Cells"),
    ]


def test_a_body_without_feeds_is_an_empty_list():
    assert parse_opml(b'<opml version="1.0"><head/><body><outline text="Empty folder"/></body></opml>', "x.opml") == []


def test_malformed_xml_names_file_and_line():
    broken = READER_EXPORT.replace(b'<outline text="PRL"', b'<outline text="PRL" text="again"')
    with pytest.raises(ParseError, match=r"^subscriptions\.opml:8: malformed XML") as caught:
        parse_opml(broken, "subscriptions.opml")
    assert (caught.value.location, caught.value.line) == ("subscriptions.opml", 8)


@pytest.mark.parametrize(
    ("content", "message", "line"),
    [
        (b'<?xml version="1.0"?>\n<rss version="2.0"><channel/></rss>', "not an OPML file", 2),
        (b'<opml version="2.0">\n<head/>\n</opml>', "without <body>", 1),
        (b'<opml version="2.0"><body>\n<outline text="Broken" xmlUrl=" "/>\n</body></opml>', "empty xmlUrl", 2),
        (b"", "empty document", 1),
    ],
    ids=["rss-not-opml", "no-body", "empty-xmlurl", "empty-file"],
)
def test_what_is_not_usable_opml_is_a_parse_error(content, message, line):
    with pytest.raises(ParseError, match=message) as caught:
        parse_opml(content, "import.opml")
    assert (caught.value.location, caught.value.line) == ("import.opml", line)


def test_an_external_entity_is_refused_not_read():
    hostile = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<opml version="2.0"><body><outline text="&xxe;" xmlUrl="https://example.org/a.xml"/></body></opml>"""
    with pytest.raises(ParseError, match="external entity") as caught:
        parse_opml(hostile, "hostile.opml")
    assert (caught.value.location, caught.value.line) == ("hostile.opml", 3)


UNSAFE_EXPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Shared with me</title></head>
  <body>
    <outline text="Public" type="rss" xmlUrl="http://93.184.215.14/feed.xml"/>
    <outline text="Passwords" type="rss" xmlUrl="file:///etc/passwd"/>
    <outline text="Script" type="rss" xmlUrl="javascript:fetch('//evil.example')"/>
    <outline text="Router" type="rss" xmlUrl="http://192.168.1.1/admin"/>
    <outline text="Database" type="rss" xmlUrl="http://localhost:5432/"/>
  </body>
</opml>
"""


def _resolver(table):
    import socket

    def resolve(host, port, *rest):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in table[host]]

    return resolve


def test_every_refused_feed_is_named_by_line_and_none_is_kept():
    from academichub.errors import SourceError
    from academichub.sources.opml import check_feed_urls

    feeds = parse_opml(UNSAFE_EXPORT, "shared.opml")
    with pytest.raises(SourceError) as caught:
        check_feed_urls(feeds, "shared.opml", allow_private=False, resolver=_resolver({"localhost": ["127.0.0.1"]}))
    assert str(caught.value).splitlines() == [
        "4 of 5 feeds refused, nothing imported:",
        "  shared.opml:6: file:///etc/passwd: refused: scheme 'file' is not http or https",
        "  shared.opml:7: javascript:fetch('//evil.example'): refused: scheme 'javascript' is not http or https",
        "  shared.opml:8: http://192.168.1.1/admin: refused: 192.168.1.1 is private",
        "  shared.opml:9: http://localhost:5432/: refused: host localhost is 127.0.0.1 (loopback)",
    ]


def test_allow_private_lets_addresses_in_but_never_file_or_javascript():
    from academichub.errors import SourceError
    from academichub.sources.opml import check_feed_urls

    feeds = parse_opml(UNSAFE_EXPORT, "shared.opml")
    with pytest.raises(SourceError) as caught:
        check_feed_urls(feeds, "shared.opml", allow_private=True, resolver=_resolver({}))
    assert [line.split(": ", 1)[0].strip() for line in str(caught.value).splitlines()[1:]] == ["shared.opml:6", "shared.opml:7"]
    kept = [f for f in feeds if f.xml_url.startswith("http")]
    assert check_feed_urls(kept, "shared.opml", allow_private=True, resolver=_resolver({})) == kept
