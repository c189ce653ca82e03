"""arXiv's daily announcement feeds (rss.arxiv.org/rss/<archives or categories joined by +>).

Each item's description carries `arXiv:ID vN Announce Type: new|cross|replace|replace-cross` and
the abstract; the channel's pubDate is the announcement day; an empty channel is a day without
announcement, and a channel titled "Feed error for query" names a bad archive."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Iterator
from zoneinfo import ZoneInfo

from ..cleantext import clean_text
from ..errors import FeedError, ParseError
from ..model import FeedInfo, ParsedBatch, PaperData, VersionData
from ..names import split_author_list, tex_to_unicode
from .arxiv_ids import abs_url, parse_arxiv_id, pdf_url
from .kinds import FileFormat, Fetch, MergeFamily, Page, Param, SourceKind, xml_root
from .xmlsafe import parse_xml

SOURCE = "arxiv-rss"
_ARXIV_NS = "http://arxiv.org/schemas/atom"
_DC_NS = "http://purl.org/dc/elements/1.1/"
_DESCRIPTION = re.compile(
    r"^\s*arXiv:(?P<id>\S+?)\s+Announce Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:\s*(?P<abstract>.*))?$", re.S
)
_ARCHIVE_OK = re.compile(r"^[a-z][a-z\-]*(\.[A-Za-z\-]+)?$")
# The archives rss.arxiv.org accepts (as its own error feed lists them); categories are
# "<archive>.<subject>" (cs.LG) or, for physics, an archive of their own (physics.optics).
ARCHIVES = frozenset(
    "astro-ph cond-mat cs econ eess gr-qc hep-ex hep-lat hep-ph hep-th math math-ph nlin "
    "nucl-ex nucl-th physics q-bio q-fin quant-ph stat test".split()
)

_TAG_TITLE = "title"
_TAG_LINK = "link"
_TAG_DESCRIPTION = "description"
_TAG_CATEGORY = "category"
_TAG_GUID = "guid"
_TAG_ANNOUNCE = f"{{{_ARXIV_NS}}}announce_type"
_TAG_RIGHTS = f"{{{_DC_NS}}}rights"
_TAG_CREATOR = f"{{{_DC_NS}}}creator"
_TAG_DOI = f"{{{_ARXIV_NS}}}DOI"
_TAG_JOURNAL_REF = f"{{{_ARXIV_NS}}}journal_reference"


def feed_url(base_url: str, archives: list[str]) -> str:
    """The feed URL for archives/categories; a malformed name is refused before any request."""
    if not archives:
        raise FeedError("no archive or category given")
    for name in archives:
        if not _ARCHIVE_OK.match(name) or name.split(".", 1)[0] not in ARCHIVES:
            raise FeedError(
                f"bad archive or category name {name!r}; archives are: {', '.join(sorted(ARCHIVES))}"
            )
    return base_url.rstrip("/") + "/" + "+".join(archives)


def _rfc822_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return parsedate_to_datetime(text.strip()).date()
    except (TypeError, ValueError, OverflowError):  # a year past the calendar is OverflowError
        return None


def parse_rss(content: bytes, location: str) -> ParsedBatch:
    root = parse_xml(content, location)
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise ParseError(f"not an RSS feed (root <{root.tag}>)", location=location, line=root.sourceline)

    title = channel.findtext("title") or ""
    description = clean_text(channel.findtext("description"))
    if title.startswith("Feed error for query"):
        bad = re.search(r"Bad archive '([^']*)'", description)
        what = f"bad archive {bad.group(1)!r}" if bad else "feed error"
        raise FeedError(f"arXiv RSS: {what}: {description}", url=channel.findtext("link") or location)

    announced = _rfc822_date(channel.findtext("pubDate"))
    feed = FeedInfo(
        title=title,
        link=channel.findtext("link"),
        announced=announced,
        skip_days=[d.text.strip() for d in channel.iterfind("skipDays/day") if d.text],
    )
    papers = [_parse_item(item, announced, location) for item in channel.iterfind("item")]
    return ParsedBatch(papers=papers, feed=feed)


def _parse_item(item, announced: date | None, location: str) -> PaperData:
    title = link = desc = guid = rights = creator = doi = journal_ref = announce_tag = None
    categories: list[str] = []
    for child in item:
        tag = child.tag
        if tag == _TAG_CATEGORY:
            if child.text:
                categories.append(child.text.strip())
        elif tag == _TAG_TITLE:
            title = child.text
        elif tag == _TAG_DESCRIPTION:
            desc = child.text
        elif tag == _TAG_LINK:
            link = child.text
        elif tag == _TAG_GUID:
            guid = child.text
        elif tag == _TAG_CREATOR:
            creator = child.text
        elif tag == _TAG_RIGHTS:
            rights = child.text
        elif tag == _TAG_ANNOUNCE:
            announce_tag = child.text
        elif tag == _TAG_DOI:
            doi = child.text
        elif tag == _TAG_JOURNAL_REF:
            journal_ref = child.text

    match = _DESCRIPTION.match(desc or "")
    if not match:
        raise ParseError(
            f"item description lacks 'arXiv:ID Announce Type:' ({(desc or '')[:60]!r})",
            location=location,
            line=item.sourceline,
        )
    try:
        arxiv_id, version = parse_arxiv_id(match.group("id"))
    except ParseError as exc:
        raise ParseError(str(exc), location=location, line=item.sourceline) from exc
    announce_type = (announce_tag or match.group("type")).strip()
    abstract = clean_text(match.group("abstract"))
    versioned = f"{arxiv_id}v{version}" if version else arxiv_id
    raw = {
        "guid": guid,
        "title": title,
        "description": desc,
        "categories": categories,
        "creator": creator,
        "rights": rights,
        "doi": doi,
        "journal_reference": journal_ref,
        "announce_type": announce_type,
        "announced": announced.isoformat() if announced else None,
    }
    return PaperData(
        source=SOURCE,
        source_id=versioned,
        title=clean_text(title),
        abstract=abstract,
        authors=split_author_list(creator or ""),
        arxiv_id=arxiv_id,
        arxiv_version=version,
        doi=clean_text(doi) or None,
        categories=categories,
        journal_ref=clean_text(journal_ref) or None,
        license=clean_text(rights) or None,
        url_abs=(link or abs_url(arxiv_id)).strip(),
        url_pdf=pdf_url(arxiv_id, version),
        announced=announced,
        updated=datetime.combine(announced, time()) if announced and announce_type.startswith("replace") else None,
        versions=[VersionData(version=version)] if version else [],
        announce_type=announce_type,
        raw=raw,
    )


# ----------------------------------------------------------------------------- the arxiv kind

# arXiv's records, however read (RSS, API, OAI-PMH, snapshot), are one family: the newer version
# wins. Against journals arXiv keeps its links and abstract, not the title or venue.
ARXIV_FAMILY = MergeFamily("arxiv", default_rank=5, ranks={
    "title": 3, "abstract": 6, "authors": 4, "venue": 1, "published_on": 2, "work_type": 2, "url_abs": 7,
})
ARXIV_NAMESPACE = b"arxiv.org/schemas/atom"  # RSS and Atom are arXiv's only with it; others are publishers' feeds

# arXiv announces Sunday to Thursday at 20:00 US Eastern (its feeds change then and only then).
ANNOUNCEMENT_ZONE = ZoneInfo("America/New_York")
ANNOUNCEMENT_TIME = time(20, 0)
ANNOUNCEMENT_WEEKDAYS = frozenset({6, 0, 1, 2, 3})  # date.weekday(): Sunday, Monday … Thursday
RETRY_AFTER_FAILURE = timedelta(hours=1)  # at most; a shorter interval_minutes retries sooner


def next_announcement(after: datetime) -> datetime:
    """The first announcement instant strictly after `after` (aware; naive means UTC), in UTC.
    20:00 exists on every day in New York (clocks change at 2:00), so DST only moves the UTC hour."""
    after = _aware(after)
    day = after.astimezone(ANNOUNCEMENT_ZONE).date()
    for offset in range(8):
        candidate_day = day + timedelta(days=offset)
        if candidate_day.weekday() in ANNOUNCEMENT_WEEKDAYS:
            instant = datetime.combine(candidate_day, ANNOUNCEMENT_TIME, tzinfo=ANNOUNCEMENT_ZONE)
            if instant > after:
                return instant.astimezone(timezone.utc)
    raise AssertionError("a week always has an announcement")  # pragma: no cover


def last_announcement(at: datetime) -> datetime:
    """The latest announcement instant at or before `at` (aware; naive means UTC), in UTC: what a
    feed fetched at `at` shows. Its New York date names the announcement (e.g. in a job's key)."""
    at = _aware(at)
    day = at.astimezone(ANNOUNCEMENT_ZONE).date()
    for offset in range(8):
        candidate_day = day - timedelta(days=offset)
        if candidate_day.weekday() in ANNOUNCEMENT_WEEKDAYS:
            instant = datetime.combine(candidate_day, ANNOUNCEMENT_TIME, tzinfo=ANNOUNCEMENT_ZONE)
            if instant <= at:
                return instant.astimezone(timezone.utc)
    raise AssertionError("a week always has an announcement")  # pragma: no cover


def announcement_schedule(source: dict, now: datetime) -> datetime:
    """When an arXiv source is next due: once after each announcement. Never run: now. After a
    success: the first announcement after it. After a failure: again after the interval or an hour,
    whichever is smaller, but never before the announcement that follows the last success (a feed
    fetched since an announcement has nothing new until the next). Naive datetimes are UTC, and the
    answer is naive when `now` is."""
    last_run = source.get("last_run_at")
    if last_run is None:
        return now
    last_success = source.get("last_success_at")
    retry = _aware(last_run) + min(timedelta(minutes=source["interval_minutes"]), RETRY_AFTER_FAILURE)
    if last_success is None:
        due = retry
    else:
        due = next_announcement(last_success)
        if _aware(last_run) > _aware(last_success):  # the last run failed
            due = max(due, retry)
    return due if now.tzinfo is not None else due.astimezone(timezone.utc).replace(tzinfo=None)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def archives_of(params: dict) -> list[str]:
    """The archives/categories of an arxiv source's `archives` parameter ("cs.LG+math.ST", spaces allowed)."""
    return str(params.get("archives") or "").replace(" ", "+").split("+")


def _check(params: dict) -> None:
    feed_url("https://rss.arxiv.org/rss/", archives_of(params))  # a malformed name is refused when added


def _pages(fetch: Fetch) -> Iterator[Page]:
    url = feed_url(fetch.settings.arxiv_rss_url, archives_of(fetch.params))
    fetched = fetch.http.get(url)
    if fetched.not_modified:
        return
    yield parse_rss(fetched.content, url)


SOURCE_KINDS = (
    SourceKind(
        name="arxiv",
        label="arXiv",
        family=ARXIV_FAMILY,
        records=(SOURCE,),
        file=FileFormat(
            name=SOURCE, syntax="xml", sniff=xml_root("rss", containing=ARXIV_NAMESPACE), description="arXiv RSS",
            parse=parse_rss, announces=True,
        ),
        pages=_pages,
        params=(Param("archives", "archives or categories joined by +, e.g. cs.LG+math.ST", required=True),),
        check=_check,
        min_interval=lambda settings: settings.arxiv_min_interval,
        conditional=True,
        next_run=announcement_schedule,
    ),
)
