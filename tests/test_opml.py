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
