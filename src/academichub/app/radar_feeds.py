"""A radar as a feed a feed reader follows: the secret per-user feed token, and what a radar's
feed holds (its ranked papers of the recent announced days, each with why, and each day's
briefing). web/atom_feed.py renders it as Atom and the user's radars as OPML.

The token is signed with the installation's key (app/signing.py) over the user id and a
per-user generation kept in the store (`feed_tokens`): the user can see their URLs again at any
time, and rotating bumps the generation so every URL made before stops working.

A feed reader polls, so reading a feed changes nothing: no batch is recorded as shown (the
ranking is `ranked_for_api`, as `academichub rank`), and no briefing is written: a day shows its
stored briefing, else an extractive one made for the response and not kept (no LLM is called).
`feed_validators` answers a conditional GET from a fingerprint of the inputs, without ranking."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING

from ..brief.briefing import Briefing, latest_briefing, normalise_lang, unstored_extractive
from ..brief.inputs import period_papers
from ..errors import AcademicHubError, NotFound
from ..store.feed import available_dates, get_paper
from ..store.feed_tokens import feed_fingerprint, generation, newest_time, rotate
from ..store.radars import RadarSummary, get_radar, list_radars
from ..store.state import as_utc
from .radar_feed import ranked_for_api, shown_reasons
from .signing import BadSignature, sign, signing_key, verify

if TYPE_CHECKING:  # pragma: no cover
    from .hub import Hub

PURPOSE = "radar-feed"
DEFAULT_DAYS = 7
MAX_DAYS = 30
MAX_PER_DAY = 100


class FeedTokenError(AcademicHubError):
    """A feed URL whose token is forged, altered, or was rotated away."""


@dataclass(slots=True)
class FeedDay:
    day: date
    papers: list[dict]  # store.feed cards, best first, each with "reasons" and "score"
    briefing: Briefing | None  # stored, else extractive made for this response; None: no papers


@dataclass(slots=True)
class RadarFeed:
    user_id: int
    radar_id: int
    name: str
    interest: str | None
    lang: str
    days: list[FeedDay] = field(default_factory=list)  # newest first
    updated: datetime | None = None  # UTC: the newest of the feed's inputs


# ----------------------------------------------------------------------------- the token


def feed_token(hub: "Hub", user_id: int) -> str:
    """The user's current secret feed token (the same until rotated)."""
    with hub.reading() as conn:
        current = generation(conn, user_id)
    return sign(signing_key(hub.settings), PURPOSE, {"u": int(user_id), "g": current}, max_age=None)


def rotate_feed_token(hub: "Hub", user_id: int) -> str:
    """A new token for the user; every feed URL made with an older one stops working."""
    with hub.writing() as conn:
        rotate(conn, user_id, hub.now())
    return feed_token(hub, user_id)


def feed_user(hub: "Hub", token: str) -> int:
    """The user a feed token belongs to; FeedTokenError when it is not the user's current one."""
    try:
        payload = verify(signing_key(hub.settings), PURPOSE, token)
    except BadSignature as exc:
        raise FeedTokenError("invalid feed token") from exc
    user_id, stamp = payload.get("u"), payload.get("g")
    if not isinstance(user_id, int) or not isinstance(stamp, int):
        raise FeedTokenError("invalid feed token")
    with hub.reading() as conn:
        if generation(conn, user_id) != stamp:
            raise FeedTokenError("this feed token was rotated: copy the new feed URL")
    return user_id


def feed_radars(hub: "Hub", user_id: int) -> list[RadarSummary]:
    """The radars a user's feeds cover (the OPML list and the settings page)."""
    with hub.reading() as conn:
        return list_radars(conn, user_id)


# ----------------------------------------------------------------------------- the feed


def _owned_radar(conn, user_id: int, radar_id: int):
    radar = get_radar(conn, int(radar_id))
    if radar is None or radar.user_id != user_id:
        raise NotFound(f"no radar {radar_id}")
    return radar


def feed_validators(hub: "Hub", user_id: int, radar_id: int, *, days: int, per_day: int, lang: str,
                    token: str) -> tuple[str, datetime | None]:
    """(strong ETag, Last-Modified in UTC) of a radar's feed, from a fingerprint of its inputs: equal
    validators mean the same document, so a 304 needs no ranking."""
    with hub.reading() as conn:
        _owned_radar(conn, user_id, radar_id)
        fingerprint = feed_fingerprint(conn, int(radar_id))
    key = repr((fingerprint, days, per_day, lang, token, hub.settings.embedding_model, hub.settings.rank_weights,
                hub.settings.briefing_papers))
    newest = newest_time(fingerprint)
    return '"' + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32] + '"', as_utc(newest) if newest else None


def radar_feed(hub: "Hub", user_id: int, radar_id: int, *, days: int = DEFAULT_DAYS, per_day: int | None = None,
               lang: str | None = None) -> RadarFeed:
    """A radar's ranked papers of its latest `days` announced days (at most `per_day` each, best
    first) with their reasons, and each day's briefing; nothing is written."""
    language = normalise_lang(lang or hub.settings.default_language)
    days = max(1, min(int(days), MAX_DAYS))
    per_day = max(1, min(int(per_day or hub.settings.batch_size), MAX_PER_DAY))
    with hub.reading() as conn:
        radar = _owned_radar(conn, user_id, radar_id)
        feed = RadarFeed(user_id, radar.id, radar.name, radar.interest, language)
        newest = newest_time(feed_fingerprint(conn, radar.id))
        feed.updated = as_utc(newest) if newest else None
        wanted = [d for d, _count in available_dates(conn, limit=days)]
        if not wanted:
            return feed
        day_of: dict[int, date] = {}
        for day in sorted(wanted):  # a paper counts on its announcement day (or publication day)
            for pid in period_papers(conn, day, day, limit=1_000_000):
                day_of.setdefault(pid, day)
        ranked = ranked_for_api(hub, str(radar.id), since=min(wanted), limit=None, worth_saying=False)
        picked: dict[date, list] = {d: [] for d in wanted}
        for r in ranked:
            day = day_of.get(int(r.id))
            if day is not None and len(picked[day]) < per_day:
                picked[day].append(r)
        for day in sorted(wanted, reverse=True):
            cards = []
            for r in picked[day]:
                card = get_paper(conn, r.id)
                if card is None:
                    continue
                card["reasons"] = shown_reasons(r.reasons)
                card["score"] = r.score
                cards.append(card)
            feed.days.append(FeedDay(day, cards, None))
    for entry in feed.days:
        if entry.papers:
            entry.briefing = _day_briefing(hub, radar.id, entry, language)
    return feed


def _day_briefing(hub: "Hub", radar_id: int, entry: FeedDay, lang: str) -> Briefing | None:
    stored = latest_briefing(hub.engine, radar_id=radar_id, period=(entry.day, entry.day), lang=lang)
    if stored is not None:
        return stored
    ids = [card["id"] for card in entry.papers][: max(1, hub.settings.briefing_papers)]
    return unstored_extractive(hub.engine, radar_id=radar_id, paper_ids=ids, period=(entry.day, entry.day), lang=lang,
                               model=hub.settings.embedding_model)


def day_time(day: date) -> datetime:
    """A day as an Atom timestamp (midnight UTC)."""
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


__all__ = ["DEFAULT_DAYS", "FeedDay", "FeedTokenError", "RadarFeed", "day_time", "feed_radars", "feed_token",
           "feed_user", "feed_validators", "radar_feed", "rotate_feed_token"]
