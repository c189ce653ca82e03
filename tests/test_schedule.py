"""The scheduler's pure decider (app/schedule.py) at exact instants: arXiv's announcement windows
(US Eastern, across DST), each owner's briefing hour in their zone (DST gap included), and which
jobs the ledger already holds."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from academichub.app.schedule import (
    JobIntent,
    LedgerEntry,
    RadarClock,
    arxiv_window,
    briefing_due,
    briefing_time,
    due_jobs,
    next_briefing,
    source_key,
)

UTC = timezone.utc


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def source(name, kind="crossref", *, last_run=None, interval=1440, enabled=True) -> dict:
    """A source row whose last run (if any) succeeded, as the runner records it."""
    return {"name": name, "kind": kind, "enabled": enabled, "interval_minutes": interval, "last_run_at": last_run,
            "last_success_at": last_run, "params": {}}


@pytest.mark.parametrize("now, window", [
    # Thursday 2026-12-03, 20:00 EST is 01:00 UTC on Friday.
    (at(2026, 12, 4, 0, 59), date(2026, 12, 2)),
    (at(2026, 12, 4, 1, 0), date(2026, 12, 3)),
    # No announcement on Friday and Saturday evenings: Thursday's window holds until Sunday 20:00.
    (at(2026, 12, 6, 0, 59), date(2026, 12, 3)),
    (at(2026, 12, 7, 0, 59), date(2026, 12, 3)),
    (at(2026, 12, 7, 1, 0), date(2026, 12, 6)),
    # DST: on Sunday 2026-03-08 (EDT from 02:00) the announcement is at 00:00 UTC, not 01:00.
    (at(2026, 3, 8, 23, 59), date(2026, 3, 5)),
    (at(2026, 3, 9, 0, 0), date(2026, 3, 8)),
    # Back to EST on Sunday 2026-11-01: 20:00 is 01:00 UTC again.
    (at(2026, 11, 2, 0, 59), date(2026, 10, 29)),
    (at(2026, 11, 2, 1, 0), date(2026, 11, 1)),
])
def test_arxiv_window_is_the_newest_announcement(now, window):
    assert arxiv_window(now) == window
    assert arxiv_window(now.replace(tzinfo=None)) == window  # the store's naive UTC reads the same


def test_briefing_hour_in_the_owners_zone():
    day = date(2026, 12, 6)
    shanghai = RadarClock(1, "r", "Asia/Shanghai", 7)  # UTC+8, no DST
    assert briefing_time(shanghai, day) == at(2026, 12, 5, 23, 0)
    assert not briefing_due(shanghai, day, at(2026, 12, 5, 22, 59))  # 06:59 on the 6th in Shanghai
    assert briefing_due(shanghai, day, at(2026, 12, 5, 23, 0))
    assert briefing_due(shanghai, day, datetime(2026, 12, 5, 23, 0))  # naive: UTC
    assert next_briefing(shanghai, at(2026, 12, 5, 22, 59)) == at(2026, 12, 5, 23, 0)
    assert next_briefing(shanghai, at(2026, 12, 5, 23, 0)) == at(2026, 12, 6, 23, 0)
    la = RadarClock(2, "l", "America/Los_Angeles", 0)  # midnight PST is 08:00 UTC
    assert not briefing_due(la, day, at(2026, 12, 6, 7, 59))
    assert briefing_due(la, day, at(2026, 12, 6, 8, 0))


def test_briefing_hour_across_dst():
    berlin = RadarClock(1, "r", "Europe/Berlin", 7)
    # 2026-03-29: clocks go 02:00 CET -> 03:00 CEST; 07:00 is 06:00 UTC the day before, 05:00 UTC that day.
    assert briefing_time(berlin, date(2026, 3, 28)) == at(2026, 3, 28, 6, 0)
    assert briefing_time(berlin, date(2026, 3, 29)) == at(2026, 3, 29, 5, 0)
    assert not briefing_due(berlin, date(2026, 3, 29), at(2026, 3, 29, 4, 59))
    assert briefing_due(berlin, date(2026, 3, 29), at(2026, 3, 29, 5, 0))
    # An hour that does not exist that night (02:00) begins when the clocks jump past it.
    gap = RadarClock(2, "g", "Europe/Berlin", 2)
    assert briefing_time(gap, date(2026, 3, 29)) == at(2026, 3, 29, 1, 0)
    # The autumn night has 02:00 twice: the first one counts.
    assert briefing_time(gap, date(2026, 10, 25)) == at(2026, 10, 25, 0, 0)
    # New York's 07:00 moves from 12:00 UTC (EST) to 11:00 UTC (EDT) on 2026-03-08.
    ny = RadarClock(3, "n", "America/New_York", 7)
    assert briefing_time(ny, date(2026, 3, 7)) == at(2026, 3, 7, 12, 0)
    assert briefing_time(ny, date(2026, 3, 8)) == at(2026, 3, 8, 11, 0)
    assert next_briefing(ny, at(2026, 3, 7, 12, 0)) == at(2026, 3, 8, 11, 0)  # 23 hours later


def test_never_run_sources_are_due_at_once_and_arxiv_shares_one_job():
    now = at(2026, 12, 4, 2, 0)
    sources = [source("arxiv-cs", "arxiv"), source("arxiv-math", "arxiv"), source("crossref:nature"),
               source("off", enabled=False)]
    jobs = due_jobs(now, sources, [], None, {})
    assert jobs == [
        JobIntent("sources", "arxiv:2026-12-03", {"sources": ["arxiv-cs", "arxiv-math"], "window": "2026-12-03"}),
        JobIntent("sources", "source:crossref:nature:2026-12-04", {"sources": ["crossref:nature"], "window": "2026-12-04"}),
    ]


def test_a_window_in_the_ledger_is_not_queued_again():
    now = at(2026, 12, 4, 2, 0)
    sources = [source("arxiv-cs", "arxiv"), source("arxiv-new", "arxiv"), source("crossref:nature")]
    ledger = {
        "arxiv:2026-12-03": LedgerEntry("done", {"sources": ["arxiv-cs"]}),
        "source:crossref:nature:2026-12-04": LedgerEntry("failed", {"sources": ["crossref:nature"]}),
    }
    # A source added after its announcement's job ran gets one of its own; the others nothing.
    assert due_jobs(now, sources, [], None, ledger) == [
        JobIntent("sources", "arxiv:2026-12-03:arxiv-new", {"sources": ["arxiv-new"], "window": "2026-12-03"}),
    ]
    ledger["arxiv:2026-12-03:arxiv-new"] = LedgerEntry("queued", {"sources": ["arxiv-new"]})
    assert due_jobs(now, sources, [], None, ledger) == []


def test_source_windows_follow_the_interval():
    daily = source("c", last_run=datetime(2026, 12, 3, 23, 30))
    assert source_key(daily, at(2026, 12, 4, 23, 30)) == "source:c:2026-12-04"
    hourly = source("h", interval=60)
    assert source_key(hourly, at(2026, 12, 4, 10, 59)) == "source:h:2026-12-04T10:00"
    assert source_key(hourly, at(2026, 12, 4, 11, 0)) == "source:h:2026-12-04T11:00"
    # Not due before its interval passed, due at the minute it does.
    assert due_jobs(at(2026, 12, 4, 23, 29), [daily], [], None, {}) == []
    assert [j.key for j in due_jobs(at(2026, 12, 4, 23, 30), [daily], [], None, {})] == ["source:c:2026-12-04"]


def test_briefings_wait_for_the_hour_and_for_ingest():
    day = date(2026, 12, 3)
    radars = [RadarClock(1, "ml", "Asia/Shanghai", 7), RadarClock(2, "bio", "America/Los_Angeles", 7)]
    ran = source("arxiv-cs", "arxiv", last_run=datetime(2026, 12, 3, 1, 30))
    # The 3rd's 07:00 is 23:00 UTC on the 2nd in Shanghai, 15:00 UTC on the 3rd in Los Angeles.
    now = at(2026, 12, 3, 15, 0)
    assert [j.key for j in due_jobs(now, [ran], radars, day, {})] == ["brief:1:2026-12-03", "brief:2:2026-12-03"]
    assert due_jobs(now, [ran], radars, day, {})[0].params == {"radar_id": 1, "radar": "ml", "day": "2026-12-03"}
    # While a fetch or an embedding is open, no briefing (it would read a half-ingested day).
    for open_key in ("arxiv:2026-12-02", "embed:arxiv:2026-12-02", "candidates:arxiv:2026-12-02"):
        busy = {open_key: LedgerEntry("running", {})}
        assert due_jobs(now, [ran], radars, day, busy) == []
    assert due_jobs(now, [ran], radars, day, {"embed:arxiv:2026-12-02": LedgerEntry("done", {})}) != []
    # Before Los Angeles' 07:00 only Shanghai is due (its hour passed before the papers came: at once).
    early = at(2026, 12, 3, 14, 59)
    assert [j.key for j in due_jobs(early, [ran], radars, day, {})] == ["brief:1:2026-12-03"]
    # A done briefing is not written again.
    done = {"brief:1:2026-12-03": LedgerEntry("done", {})}
    assert due_jobs(early, [ran], radars, day, done) == []
    # No announced day yet: nothing to brief.
    assert due_jobs(now, [ran], radars, None, {}) == []
    # A due source is queued first; the briefings come on a later tick.
    assert [j.name for j in due_jobs(now + timedelta(days=1), [ran], radars, day, {})] == ["sources"]
