"""The SourceKind registry: every upstream is described once, in its own module, and what used to
be lists in formats, merge, runner, store and the CLI is read from it with the same answers. The
arXiv kind's schedule follows the announcements (Sunday to Thursday, 20:00 America/New_York),
checked with exact datetimes across DST changes and weekends."""

from __future__ import annotations

import importlib
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from academichub.errors import ConfigError, FeedError, SourceError
from academichub.ingest import merge
from academichub.ingest.runner import check_params, is_due, make_http, next_run
from academichub.settings import Settings
from academichub.sources import kinds
from academichub.sources.arxiv_rss import announcement_schedule, last_announcement, next_announcement
from academichub.sources.safe_url import GuardedTransport
from academichub.store import sources as source_store
from academichub.store.feed import source_label

UTC = timezone.utc


def test_every_builtin_module_declares_its_kinds_and_the_registry_keeps_their_order():
    declared = []
    for name in kinds.BUILTIN_MODULES:
        module = importlib.import_module(f"academichub.sources.{name}")
        assert module.SOURCE_KINDS, f"{name} declares no kind"
        declared += [kind.name for kind in module.SOURCE_KINDS]
    assert [kind.name for kind in kinds.all_kinds()][: len(declared)] == declared
    # the kinds a source row can name, as store/sources.KINDS listed them before the registry
    assert source_store.KINDS[:8] == ("arxiv", "crossref", "pubmed", "biorxiv", "medrxiv", "openalex", "feed", "semanticscholar")
    for kind in kinds.addable_kinds():
        assert kind.label and kind.family.name
        assert all(param.help for param in kind.params), kind.name


def test_field_precedence_is_the_table_merge_used_to_keep():
    """The per-field ranks merge.py kept in one table, now declared per family by the kinds: the
    same answer for every field and every record source."""
    families = {
        "arxiv-rss": "arxiv", "arxiv-api": "arxiv", "arxiv-oai": "arxiv", "arxiv-snapshot": "arxiv", "crossref": "crossref",
        "pubmed": "pubmed", "pmc": "pubmed", "openalex": "openalex", "biorxiv": "biorxiv", "medrxiv": "biorxiv",
        "feed": "feed", "semanticscholar": "s2",
    }
    default = {"crossref": 6, "pubmed": 6, "openalex": 4, "arxiv": 5, "biorxiv": 5, "feed": 3, "s2": 2}
    table = {
        "title": {"crossref": 7, "pubmed": 6, "openalex": 5, "feed": 4, "arxiv": 3, "biorxiv": 3, "s2": 1},
        "abstract": {"pubmed": 7, "arxiv": 6, "biorxiv": 6, "crossref": 5, "feed": 4, "openalex": 3, "s2": 1},
        "authors": {"crossref": 7, "pubmed": 6, "openalex": 5, "arxiv": 4, "biorxiv": 4, "feed": 3, "s2": 1},
        "venue": {"crossref": 7, "pubmed": 6, "openalex": 5, "feed": 4, "s2": 2, "arxiv": 1, "biorxiv": 1},
        "published_on": {"crossref": 7, "pubmed": 6, "openalex": 5, "feed": 4, "biorxiv": 2, "arxiv": 2, "s2": 1},
        "work_type": {"crossref": 7, "pubmed": 6, "openalex": 5, "feed": 4, "biorxiv": 2, "arxiv": 2, "s2": 1},
        "url_abs": {"arxiv": 7, "biorxiv": 6, "crossref": 5, "pubmed": 4, "feed": 4, "openalex": 3, "s2": 1},
        "tldr": {"s2": 7},
    }
    for source, family in families.items():
        assert merge.family(source) == family
        for field_name in [*merge.SCALARS, "authors"]:
            expected = table.get(field_name, default).get(family, default[family])
            assert merge.rank(field_name, source) == expected, (field_name, source)
    assert (merge.family("library"), merge.rank("title", "library")) == ("library", 0)  # no kind: its own family, last


def test_labels_of_servers_and_origins_come_from_the_kinds():
    assert [kinds.label_of(s) for s in ("pmc", "medrxiv", "feed", "semanticscholar", "arxiv-oai", "library")] == [
        "PubMed Central", "medRxiv", "Journal feed", "Semantic Scholar", "arXiv", None,
    ]
    assert source_label({"server": "medrxiv"}, [("medrxiv", "Epidemiology")]) == "medRxiv (Epidemiology)"
    assert source_label({"origin": "pmc"}, []) == "PubMed Central"
    assert source_label({"origin": "library"}, []) == "library"


def test_parameters_are_checked_by_their_kind():
    with pytest.raises(ConfigError, match=r"unknown source kind 'gopher'; kinds are: arxiv, crossref, pubmed"):
        check_params("gopher", {})
    with pytest.raises(ConfigError, match=r"unknown source kind 'arxiv-oai'"):  # a file format, not a source
        check_params("arxiv-oai", {})
    with pytest.raises(ConfigError, match=r"a feed source needs --param url="):
        check_params("feed", {"venue": "Nature"})
    with pytest.raises(ConfigError, match="exactly one of issn"):
        check_params("crossref", {"issn": "1574-6941", "prefix": "10.1111"})
    with pytest.raises(ConfigError, match="journal=… and/or term="):
        check_params("pubmed", {})
    with pytest.raises(FeedError, match="bad archive or category name 'cs;rm'"):
        check_params("arxiv", {"archives": "cs+cs;rm"})
    assert check_params("arxiv", {"archives": "cs.LG math.ST"}) == {"archives": "cs.LG math.ST"}
    # with the settings, the feed kind makes its URL safe to keep; without, it is only checked
    settings = Settings(allow_private_urls=False)
    with pytest.raises(SourceError, match="127.0.0.1 is loopback"):
        check_params("feed", {"url": "http://127.0.0.1/feed.xml"}, settings)
    assert check_params("feed", {"url": " http://93.184.215.14/feed.xml "}, settings)["url"] == "http://93.184.215.14/feed.xml"


def test_politeness_and_conditional_fetches_are_the_kinds(engine):
    settings = Settings(arxiv_min_interval=3.0, allow_private_urls=False, feed_max_bytes=1000, max_response_bytes=5000)
    expected = {  # kind: (seconds between requests, conditional GET, max bytes)
        "arxiv": (3.0, True, 5000), "crossref": (0.1, False, 5000), "pubmed": (1 / 3, False, 5000),
        "biorxiv": (1.0, False, 5000), "medrxiv": (1.0, False, 5000), "openalex": (0.1, False, 5000),
        "feed": (0.0, True, 1000), "semanticscholar": (1.0, False, 5000),
    }
    for kind, (interval, conditional, max_bytes) in expected.items():
        client = make_http(settings, {"kind": kind}, engine)
        try:
            assert (client.min_interval, client.cache is not None, client.max_bytes) == (interval, conditional, max_bytes), kind
            assert isinstance(client._client._transport, GuardedTransport) == (kind == "feed"), kind
        finally:
            client.close()
    keyed = make_http(Settings(pubmed_api_key="k"), {"kind": "pubmed"}, engine)
    assert keyed.min_interval == 1 / 10
    keyed.close()


def test_a_kind_is_registered_once():
    crossref = kinds.get_kind("crossref")
    assert kinds.register(crossref) is crossref  # the same kind again: nothing changes
    with pytest.raises(ConfigError, match="'crossref' is registered already"):
        kinds.register(replace(crossref))
    with pytest.raises(ConfigError, match="record source 'crossref' of kind 'crossref2' belongs to 'crossref'"):
        kinds.register(replace(crossref, name="crossref2", file=None))
    with pytest.raises(ConfigError, match="file format 'crossref' of kind 'crossref2' is registered already"):
        kinds.register(replace(crossref, name="crossref2", records=("crossref2",)))
    extra = replace(crossref, name="crossref2", records=("crossref2",), file=None)
    try:
        kinds.register(extra)
        assert kinds.get_kind("crossref2") is extra and "crossref2" in source_store.KINDS
    finally:
        kinds.unregister("crossref2")
    assert kinds.find_kind("crossref2") is None and "crossref2" not in source_store.KINDS


# ----------------------------------------------------------------------------- arXiv's announcement schedule


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # Monday 20:10 EST -> Tuesday's 20:00 EST (01:00 UTC)
        (_utc(2024, 11, 26, 1, 10), _utc(2024, 11, 27, 1, 0)),
        # exactly at an announcement: the next one (strictly after)
        (_utc(2024, 11, 26, 1, 0), _utc(2024, 11, 27, 1, 0)),
        # a second before it: that one
        (_utc(2024, 11, 26, 0, 59, 59), _utc(2024, 11, 26, 1, 0)),
        # Thursday 20:00 EST is the last of the week; Friday and Saturday have none -> Sunday 20:00 EST
        (_utc(2024, 11, 29, 1, 30), _utc(2024, 12, 2, 1, 0)),
        (_utc(2024, 11, 30, 12, 0), _utc(2024, 12, 2, 1, 0)),
        # Thursday 31 Oct 20:05 EDT (00:05 UTC) -> Sunday 3 Nov 20:00, now EST: DST ended that morning
        (_utc(2024, 11, 1, 0, 5), _utc(2024, 11, 4, 1, 0)),
        # Saturday evening in New York is already Sunday in UTC: still Sunday's 20:00 EST
        (_utc(2024, 11, 3, 1, 5), _utc(2024, 11, 4, 1, 0)),
        # spring: Thursday 7 Mar 20:30 EST -> Sunday 10 Mar 20:00 EDT (00:00 UTC): DST began that morning
        (_utc(2024, 3, 8, 1, 30), _utc(2024, 3, 11, 0, 0)),
        # summer, a weekday: Tuesday 20:00 EDT is 00:00 UTC on Wednesday
        (_utc(2024, 7, 9, 12, 0), _utc(2024, 7, 10, 0, 0)),
    ],
)
def test_next_announcement(after, expected):
    assert next_announcement(after) == expected
    assert next_announcement(after.replace(tzinfo=None)) == expected  # naive datetimes are UTC, as stored
    # and back: the announcement just before the next one is the one `after` falls in
    assert last_announcement(expected) == expected
    assert last_announcement(expected - timedelta(seconds=1)) < expected
    assert next_announcement(last_announcement(after)) == expected  # no announcement between the two


def test_last_announcement_names_the_day_a_fetch_sees():
    # Saturday noon: Thursday's announcement (20:00 EST = Friday 01:00 UTC) is the latest
    assert last_announcement(_utc(2024, 11, 30, 12, 0)) == _utc(2024, 11, 29, 1, 0)
    # Sunday 3 Nov 20:30 EST (after DST ended that morning) -> that evening's, at 01:00 UTC
    assert last_announcement(_utc(2024, 11, 4, 1, 30)) == _utc(2024, 11, 4, 1, 0)
    # a minute before it -> Thursday 31 Oct 20:00 EDT (00:00 UTC)
    assert last_announcement(_utc(2024, 11, 4, 0, 59)) == _utc(2024, 11, 1, 0, 0)


ARXIV = {"kind": "arxiv", "enabled": True, "interval_minutes": 1440, "last_run_at": None, "last_success_at": None}


def test_arxiv_schedule_after_success_failure_and_never():
    now = datetime(2024, 11, 27, 12, 0)  # naive, as the store keeps them: the answers are naive too
    assert announcement_schedule(ARXIV, now) == now  # never run: at once
    # succeeded Monday night (after Monday's announcement): due at Tuesday's, not a day after the run
    ok = {**ARXIV, "last_run_at": datetime(2024, 11, 26, 1, 10), "last_success_at": datetime(2024, 11, 26, 1, 10)}
    assert announcement_schedule(ok, now) == datetime(2024, 11, 27, 1, 0)
    # failed at Tuesday's announcement: retried after an hour (the interval is longer) ...
    failed = {**ok, "last_run_at": datetime(2024, 11, 27, 1, 2)}
    assert announcement_schedule(failed, now) == datetime(2024, 11, 27, 2, 2)
    # ... or after the interval when that is shorter
    assert announcement_schedule({**failed, "interval_minutes": 20}, now) == datetime(2024, 11, 27, 1, 22)
    # a failed run between announcements (by hand) retries no earlier than the next announcement
    early = {**ok, "last_run_at": datetime(2024, 11, 26, 15, 0)}
    assert announcement_schedule(early, now) == datetime(2024, 11, 27, 1, 0)
    # never succeeded: retried after the hour, announcement or not
    never_ok = {**ARXIV, "last_run_at": datetime(2024, 11, 30, 9, 0)}
    assert announcement_schedule(never_ok, now) == datetime(2024, 11, 30, 10, 0)
    # aware in, aware out
    aware = {**ok, "last_run_at": _utc(2024, 11, 26, 1, 10), "last_success_at": _utc(2024, 11, 26, 1, 10)}
    assert announcement_schedule(aware, _utc(2024, 11, 27, 12, 0)) == _utc(2024, 11, 27, 1, 0)


def test_a_week_of_ticks_fetches_arxiv_once_per_announcement():
    """A scheduler ticking every five minutes for a week, each due run succeeding: the first run at
    once, then one run at each announcement (none on Friday and Saturday), never two for one."""
    row = dict(ARXIV)
    runs = []
    now, end = datetime(2024, 11, 25, 12, 0), datetime(2024, 12, 2, 12, 0)
    while now < end:
        if is_due(row, now):
            runs.append(now)
            row.update(last_run_at=now, last_success_at=now)
        now += timedelta(minutes=5)
    assert runs == [
        datetime(2024, 11, 25, 12, 0),  # never run
        datetime(2024, 11, 26, 1, 0),  # Monday 20:00 EST
        datetime(2024, 11, 27, 1, 0),  # Tuesday
        datetime(2024, 11, 28, 1, 0),  # Wednesday
        datetime(2024, 11, 29, 1, 0),  # Thursday
        datetime(2024, 12, 2, 1, 0),  # Sunday
    ]
    assert next_run(row, datetime(2024, 12, 2, 12, 0)) == datetime(2024, 12, 3, 1, 0)
    assert next_run({**row, "enabled": False}, datetime(2024, 12, 2, 12, 0)) is None


def test_other_kinds_keep_the_interval_schedule():
    row = {"kind": "crossref", "enabled": True, "interval_minutes": 60, "last_run_at": datetime(2024, 11, 30, 9, 0),
           "last_success_at": datetime(2024, 11, 30, 9, 0)}
    assert not is_due(row, datetime(2024, 11, 30, 9, 59))
    assert is_due(row, datetime(2024, 11, 30, 10, 0))  # Saturday: only arXiv keeps a weekly rhythm
    assert next_run(row, datetime(2024, 11, 30, 9, 30)) == datetime(2024, 11, 30, 10, 0)
    assert next_run(row, datetime(2024, 11, 30, 11, 0)) == datetime(2024, 11, 30, 11, 0)  # overdue: now
    # a row whose kind is gone (a plugin uninstalled) is due by its interval, and fails on its own row
    assert is_due({**row, "kind": "gone"}, datetime(2024, 11, 30, 10, 0))
