"""The scheduler's decider, pure: given the time, the sources, the radars with their owners' clocks,
the newest announced day and the ledger, which jobs are due now. No I/O, so its tests give exact
datetimes (time zones, DST, the hour boundary) and the tick (app/jobs.py) only reads and writes.

Keys make every job idempotent: a window of a source (`source:NAME:WINDOW`), one arXiv
announcement for all arXiv sources (`arxiv:DAY`, one polite sequence), a radar's period
(`brief:RADAR_ID:DAY`, `deliver:RADAR_ID:DAY`); embedding and candidate refreshes are keyed by the
job that stored the papers (`embed:KEY`, `candidates:KEY`) and chained from it, not decided here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import NamedTuple
from zoneinfo import ZoneInfo

from ..ingest.runner import is_due

ARXIV_ZONE = ZoneInfo("America/New_York")
ARXIV_ANNOUNCE_AT = time(20, 0)  # Sunday to Thursday, US Eastern
ARXIV_ANNOUNCE_WEEKDAYS = frozenset({6, 0, 1, 2, 3})  # date.weekday(): Sun, Mon, Tue, Wed, Thu
INGEST_PREFIXES = ("arxiv:", "source:", "embed:", "candidates:")
OPEN = ("queued", "running")


@dataclass(frozen=True, slots=True)
class JobIntent:
    name: str  # sources | embed | candidates | brief | deliver | digest
    key: str
    params: dict = field(default_factory=dict)


class LedgerEntry(NamedTuple):
    status: str
    params: dict


@dataclass(frozen=True, slots=True)
class RadarClock:
    """A radar and when its owner wants the briefing: an IANA zone and a local hour."""

    radar_id: int
    name: str
    zone: str
    hour: int


def as_aware(now: datetime) -> datetime:
    """The store's datetimes are naive UTC; the decider works with aware ones."""
    return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)


def as_naive(now: datetime) -> datetime:
    return as_aware(now).replace(tzinfo=None)


def arxiv_window(now: datetime) -> date:
    """The US Eastern day of arXiv's newest announcement at or before `now` (20:00 Sunday to Thursday):
    one fetch of every arXiv feed per announcement, however often the tick asks."""
    local = as_aware(now).astimezone(ARXIV_ZONE)
    day = local.date()
    for back in range(8):
        candidate = day - timedelta(days=back)
        if candidate.weekday() in ARXIV_ANNOUNCE_WEEKDAYS:
            instant = datetime.combine(candidate, ARXIV_ANNOUNCE_AT, ARXIV_ZONE)
            if instant <= local:
                return candidate
    raise AssertionError("an announcement every week")  # pragma: no cover


def source_window(source: dict, now: datetime) -> str:
    """A source's window: its UTC day when it runs at most daily, else the start of its interval slot
    (a run is due only an interval after the last, so each run falls in a new window)."""
    minutes = max(1, int(source["interval_minutes"]))
    aware = as_aware(now)
    if minutes >= 1440:
        return aware.date().isoformat()
    epoch_minutes = int(aware.timestamp() // 60)
    start = datetime.fromtimestamp((epoch_minutes - epoch_minutes % minutes) * 60, timezone.utc)
    return start.strftime("%Y-%m-%dT%H:%M")


def source_key(source: dict, now: datetime) -> str:
    return f"source:{source['name']}:{source_window(source, now)}"


def brief_key(radar_id: int, day: date) -> str:
    return f"brief:{radar_id}:{day.isoformat()}"


def deliver_key(radar_id: int, day: date) -> str:
    return f"deliver:{radar_id}:{day.isoformat()}"


def briefing_time(radar: RadarClock, day: date) -> datetime:
    """When `day`'s briefing hour begins for this radar's owner, in UTC (a nonexistent local hour,
    in a DST gap, is the instant after it)."""
    local = datetime.combine(day, time(radar.hour), ZoneInfo(radar.zone))
    return local.astimezone(timezone.utc)


def briefing_due(radar: RadarClock, day: date, now: datetime) -> bool:
    """Whether the briefing of announced `day` is due: from the owner's briefing hour on their local
    `day` (so it is written at that hour, or as soon as the day's papers are in when they come later)."""
    return as_aware(now) >= briefing_time(radar, day)


def next_briefing(radar: RadarClock, now: datetime) -> datetime:
    """The next start of the owner's briefing hour after `now` (for `jobs status`)."""
    local_day = as_aware(now).astimezone(ZoneInfo(radar.zone)).date()
    at = briefing_time(radar, local_day)
    return at if at > as_aware(now) else briefing_time(radar, local_day + timedelta(days=1))


def candidate_keys(now: datetime, sources: list[dict], radars: list[RadarClock], latest_day: date | None) -> list[str]:
    """Every key `due_jobs` may look up in the ledger (so the tick reads just those)."""
    keys = []
    naive = as_naive(now)
    due = [s for s in sources if is_due(s, naive)]
    if any(s["kind"] == "arxiv" for s in due):
        window = arxiv_window(now)
        keys.append(f"arxiv:{window}")
        keys += [f"arxiv:{window}:{s['name']}" for s in due if s["kind"] == "arxiv"]
    keys += [source_key(s, now) for s in due if s["kind"] != "arxiv"]
    if latest_day is not None:
        keys += [brief_key(r.radar_id, latest_day) for r in radars]
    return keys


def due_jobs(now: datetime, sources: list[dict], radars: list[RadarClock], latest_day: date | None,
             ledger: Mapping[str, LedgerEntry]) -> list[JobIntent]:
    """The jobs to queue now. `ledger` holds the entry of every key of `candidate_keys` that exists
    and every open (queued or running) job.

    - each due source once per window; all due arXiv sources in one job per announcement (a source
      added after its announcement's job ran gets a job of its own, `arxiv:DAY:NAME`);
    - each radar's briefing of the newest announced day, from its owner's briefing hour of that
      (local) day on, and only while no ingest job (fetch, embed, candidates) is open or being queued, so a
      briefing never reads a half-ingested day."""
    intents: list[JobIntent] = []
    naive = as_naive(now)
    due = [s for s in sources if is_due(s, naive)]
    arxiv_due = [s["name"] for s in due if s["kind"] == "arxiv"]
    if arxiv_due:
        window = arxiv_window(now)
        group = f"arxiv:{window}"
        entry = ledger.get(group)
        if entry is None:
            intents.append(JobIntent("sources", group, {"sources": arxiv_due, "window": window.isoformat()}))
        else:
            covered = set(entry.params.get("sources", ()))
            for name in arxiv_due:
                key = f"{group}:{name}"
                if name not in covered and key not in ledger:
                    intents.append(JobIntent("sources", key, {"sources": [name], "window": window.isoformat()}))
    for source in due:
        if source["kind"] != "arxiv":
            key = source_key(source, now)
            if key not in ledger:
                intents.append(JobIntent("sources", key, {"sources": [source["name"]], "window": source_window(source, now)}))
    ingesting = bool(intents) or any(
        entry.status in OPEN and key.startswith(INGEST_PREFIXES) for key, entry in ledger.items()
    )
    if latest_day is not None and not ingesting:
        for radar in radars:
            if not briefing_due(radar, latest_day, now):
                continue
            key = brief_key(radar.radar_id, latest_day)
            if key not in ledger:
                intents.append(JobIntent("brief", key, {"radar_id": radar.radar_id, "radar": radar.name,
                                                        "day": latest_day.isoformat()}))
    return intents


# ----------------------------------------------------------------------------- digests

LATE_AFTER = timedelta(hours=2)  # a digest recorded this long after its period came due (the server was down) says it is late


@dataclass(frozen=True, slots=True)
class ChannelClock:
    """A delivery channel and when its owner wants it: daily or weekly (Mondays), at their hour."""

    channel_id: int
    radar_id: int | None  # None: all of the owner's radars in one digest
    cadence: str  # daily | weekly
    zone: str
    hour: int
    created_at: datetime  # naive UTC: periods that came due before the channel existed are not sent


def digest_key(channel_id: int, period: str) -> str:
    return f"digest:{channel_id}:{period}"


def digest_period(channel: ChannelClock, now: datetime) -> tuple[str, datetime]:
    """(label, due instant in UTC) of the channel's newest period that has come due at `now`: a
    local day (`2026-12-06`), due at the owner's hour of it; or an ISO week (`2026-W49`), due at
    the owner's hour of its Monday."""
    clock = RadarClock(0, "", channel.zone, channel.hour)
    local = as_aware(now).astimezone(ZoneInfo(channel.zone)).date()
    if channel.cadence == "weekly":
        day = local - timedelta(days=local.weekday())
        if briefing_time(clock, day) > as_aware(now):
            day -= timedelta(days=7)
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}", briefing_time(clock, day)
    day = local if briefing_time(clock, local) <= as_aware(now) else local - timedelta(days=1)
    return day.isoformat(), briefing_time(clock, day)


def digest_candidate_keys(now: datetime, channels: list[ChannelClock]) -> list[str]:
    return [digest_key(c.channel_id, digest_period(c, now)[0]) for c in channels]


def due_digests(now: datetime, channels: list[ChannelClock], ledger: Mapping[str, LedgerEntry], *,
                ingesting: bool = False) -> list[JobIntent]:
    """Each enabled channel's newest period once it has come due (never the ones before it: a
    server down for a week sends one digest, not seven), not while papers are being ingested (the
    digest would read a half-ingested day), not for a period that came due before the channel
    existed. Recorded two hours or more after it came due (the server was down), it is marked late."""
    if ingesting or any(entry.status in OPEN and key.startswith(INGEST_PREFIXES) for key, entry in ledger.items()):
        return []
    intents = []
    for channel in channels:
        period, due_at = digest_period(channel, now)
        if due_at < as_aware(channel.created_at):
            continue
        key = digest_key(channel.channel_id, period)
        if key in ledger:
            continue
        late = as_aware(now) - due_at >= LATE_AFTER
        intents.append(JobIntent("digest", key, {"channel_id": channel.channel_id, "period": period,
                                                 "due_at": as_naive(due_at).isoformat(), "late": late}))
    return intents


__all__ = [
    "ARXIV_ZONE", "ChannelClock", "JobIntent", "LATE_AFTER", "digest_candidate_keys", "digest_key", "digest_period",
    "due_digests", "LedgerEntry", "RadarClock", "arxiv_window", "as_aware", "as_naive", "brief_key",
    "briefing_due", "briefing_time", "candidate_keys", "deliver_key", "due_jobs", "next_briefing", "source_key",
    "source_window",
]
