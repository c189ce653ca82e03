"""Delivery's use cases: a digest's content gathered from the store (each radar's briefing and
its ranked papers with their "why", signed action links), what is due per channel (the pure
decider in app/schedule.py over the owners' clocks), sending one channel's period exactly once,
a digest sent now (`academichub digest send`), and what the web's delivery pages and signed
links do (settings, confirm-then-act, one-click unsubscribe).

Exactly once, as designed (store/delivery.py has the states): the digest job of a (channel,
period) claims its delivery row atomically, so a retry, a second worker or a second tick finds it
claimed or sent and sends nothing. The row says `committing` just before the message's last part
goes out (SMTP DATA, the webhook's POST): a worker that dies before that handed nothing over, and
the next attempt sends; one that dies after it may have delivered, so the row becomes
`unconfirmed` and is never sent again (at most once per period, with the Message-ID recorded to
find it in the mail log). A refusal the server states is `failed` and the job ledger retries it
with backoff; when its attempts are spent the channel shows the error on the settings page."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from ..brief.briefing import LANGS, periods, render_markdown
from ..delivery.digest import Digest, DigestItem, DigestSection, reason_text
from ..errors import AcademicHubError, NotFound
from ..store import delivery as store
from . import schedule
from .signing import BadSignature, sign, signing_key, verify

if TYPE_CHECKING:  # pragma: no cover
    from .hub import Hub

log = logging.getLogger(__name__)

DIGEST_PAPERS = 10  # papers per radar in a digest
ACTION_MAX_AGE = 14 * 24 * 3600.0  # a digest's like/dismiss/save links work for two weeks
ACTION_PURPOSE = "digest-action"
UNSUBSCRIBE_PURPOSE = "digest-unsubscribe"
ACTIONS = ("like", "dismiss", "save")


class DeliveryError(AcademicHubError):
    """A channel or a digest that cannot be made or sent as asked."""


class DeliveryBusy(DeliveryError):
    """Another worker holds this delivery right now: the job is tried again later."""


def base_url(settings) -> str:
    """Where links in a digest point: the public_url setting, else this server on localhost."""
    public = getattr(settings, "public_url", None)
    return str(public).rstrip("/") if public else f"http://127.0.0.1:{settings.port}"


# ----------------------------------------------------------------------------- the digest


def action_url(hub: "Hub", user_id: int, radar_id: int, paper_id: int, action: str) -> str:
    token = sign(signing_key(hub.settings), ACTION_PURPOSE, {"u": user_id, "r": radar_id, "p": paper_id, "a": action},
                 max_age=ACTION_MAX_AGE, now=hub.now().timestamp())
    return f"{base_url(hub.settings)}/digest/act?t={token}"


def unsubscribe_url(hub: "Hub", channel_id: int) -> str:
    token = sign(signing_key(hub.settings), UNSUBSCRIBE_PURPOSE, {"c": channel_id}, max_age=None)
    return f"{base_url(hub.settings)}/digest/unsubscribe?t={token}"


def _briefing_part(hub: "Hub", radar_id: int, day: date, weekly: bool, lang: str) -> tuple[str | None, str | None]:
    """(headline, Markdown without the paper list) of the radar's briefing; (None, None) when it
    cannot be written (the digest still lists the papers)."""
    from ..brief.extractive import LABELS

    try:
        briefing, _radar, _day = hub.briefing(radar_id, day, week=weekly, lang=lang)
    except AcademicHubError as exc:
        log.warning("digest: no briefing for radar %s: %s", radar_id, exc)
        return None, None
    if briefing is None:
        return None, None
    text = render_markdown(briefing, link="page", base_url=base_url(hub.settings))
    cut = text.find(f"\n## {LABELS[briefing.lang]['papers']}\n")
    return briefing.doc.headline.text, (text[:cut] if cut >= 0 else text).strip()


def build_digest(hub: "Hub", user_id: int, radar_ids: list[int], *, lang: str, weekly: bool, period: str,
                 late: bool = False, channel_id: int | None = None, day: date | None = None,
                 with_actions: bool = True, test: bool = False) -> Digest:
    """The digest of these radars for the newest announced day (or `day`): per radar, its
    briefing and its DIGEST_PAPERS best papers of the day (the week) with their reasons."""
    from ..store.feed import latest_announcement
    from ..store.papers import load_papers
    from ..store.radars import get_radar

    if lang not in LANGS:
        raise DeliveryError(f"digest language must be zh or en, not {lang!r}")
    base = base_url(hub.settings)
    with hub.engine.connect() as conn:
        day = day or latest_announcement(conn)
        radars = [(r.id, r.name) for r in (get_radar(conn, rid) for rid in radar_ids) if r is not None]
    sections = []
    for radar_id, name in radars:
        items: list[DigestItem] = []
        headline = markdown = None
        if day is not None:
            since = periods(day, weekly)[0][0]
            ranked = hub.rank(radar_id, since=since, limit=DIGEST_PAPERS)
            with hub.engine.connect() as conn:
                stored = load_papers(conn, [r.id for r in ranked])
            for r in ranked:
                paper = stored.get(r.id)
                values = paper.values if paper else {}
                names = [a["name"] for a in (paper.authors if paper else [])]
                authors = ", ".join(names[:6]) + ((" et al." if lang == "en" else " 等") if len(names) > 6 else "")
                items.append(DigestItem(
                    paper_id=r.id, title=" ".join((values.get("title") or r.title).split()), authors=authors,
                    reasons=[reason_text(x.kind, x.text, lang) for x in r.reasons],
                    card_url=f"{base}/papers/{r.id}",
                    arxiv_url=f"https://arxiv.org/abs/{values['arxiv_id']}" if values.get("arxiv_id") else None,
                    doi_url=f"https://doi.org/{values['doi']}" if values.get("doi") else None,
                    actions={a: action_url(hub, user_id, radar_id, r.id, a) for a in ACTIONS} if with_actions else {},
                ))
            headline, markdown = _briefing_part(hub, radar_id, day, weekly, lang)
        sections.append(DigestSection(radar_name=name, radar_url=f"{base}/?radar={quote(name)}", items=items,
                                      headline=headline, briefing_markdown=markdown))
    return Digest(lang=lang, period=period, weekly=weekly, late=late, sections=sections, base_url=base,
                  settings_url=f"{base}/settings/delivery",
                  unsubscribe_url=unsubscribe_url(hub, channel_id) if channel_id is not None else None, test=test)


# ----------------------------------------------------------------------------- sending


@dataclass(frozen=True, slots=True)
class SendResult:
    status: str  # sent | unconfirmed | skipped (| the row's status when another run handled it)
    message_id: str | None = None
    detail: str = ""

    def to_dict(self) -> dict:
        return {"status": self.status, "message_id": self.message_id, "detail": self.detail}


def _message_id(hub: "Hub", channel: store.Channel) -> str:
    if channel.kind == "email" and hub.settings.smtp_host:
        from ..delivery.email import mail_setup, new_message_id

        try:
            return new_message_id(mail_setup(hub.settings))
        except AcademicHubError:
            pass
    return f"<digest.{secrets.token_hex(12)}@academichub>"


def _send(hub: "Hub", channel: store.Channel, digest: Digest, message_id: str, before_commit) -> str:
    """Hand one digest to the channel; the server's answer. Raises the delivery package's errors."""
    if channel.kind == "email":
        from ..delivery.email import build_message, mail_setup, send_message

        setup = mail_setup(hub.settings)
        message = build_message(digest, to=channel.target, setup=setup, message_id=message_id,
                                unsubscribe_url=digest.unsubscribe_url)
        return send_message(setup, message, before_commit=before_commit)
    from ..delivery.webhooks import post

    return post(channel.kind, channel.target, digest, secret=channel.secret,
                allow_private=hub.settings.allow_private_urls, before_commit=before_commit)


def _channel_radars(hub: "Hub", channel: store.Channel) -> list[int]:
    if channel.radar_id is not None:
        return [channel.radar_id]
    with hub.engine.connect() as conn:
        return [rid for rid, _name in store.user_radars(conn, channel.user_id)]


def deliver_channel(hub: "Hub", channel_id: int, period: str, *, late: bool = False,
                    held_by_job: bool = False) -> SendResult:
    """Send a channel's digest of `period` once (see the module's docstring). A refusal raises
    (the job ledger retries with backoff); an answer lost after the hand-over does not.

    `held_by_job`: the caller holds the period's job in the ledger, so any other worker's claim on
    the row is from an attempt whose lease ran out (it died): taken over at once. Otherwise a claim
    is taken over once silent for a lease. Either way no message goes out twice: only the row's
    current holder may move it to `committing`, the one step before the hand-over."""
    from ..delivery.email import MailUnconfirmed
    from ..delivery.webhooks import WebhookUnconfirmed
    from .jobs import worker_id

    now = hub.now()
    with hub.engine.begin() as conn:
        channel = store.get_channel(conn, channel_id)
        if channel is None or not channel.enabled:
            return SendResult("skipped", detail="the channel is gone or turned off")
        row = store.ensure_delivery(conn, channel, period, late=late, now=now)
    if row.status in ("sent", "unconfirmed"):
        return SendResult(row.status, row.message_id, "already handled")
    me = worker_id()
    message_id = _message_id(hub, channel)
    claimed = store.claim_delivery(hub.engine, row.id, me, message_id, now,
                                   0.0 if held_by_job else hub.settings.job_lease_seconds)
    if claimed is None:
        with hub.engine.connect() as conn:
            current = store.delivery_by_id(conn, row.id)
        if current is not None and current.status in ("sent", "unconfirmed"):
            return SendResult(current.status, current.message_id, "already handled")
        raise DeliveryBusy(f"delivery {channel.kind} #{channel.id} {period}: held by {current.worker if current else '?'}")

    def before_commit() -> bool:
        return store.mark_committing(hub.engine, row.id, me, hub.now())

    try:
        digest = build_digest(hub, channel.user_id, _channel_radars(hub, channel), lang=channel.lang,
                              weekly=channel.cadence == "weekly", period=period, late=row.late, channel_id=channel.id)
        answer = _send(hub, channel, digest, message_id, before_commit)
    except (MailUnconfirmed, WebhookUnconfirmed) as exc:
        store.finish_delivery(hub.engine, row.id, me, hub.now(), "unconfirmed", str(exc))
        with hub.engine.begin() as conn:
            store.record_channel_error(conn, channel.id, str(exc), hub.now())
        return SendResult("unconfirmed", message_id, str(exc))
    except Exception as exc:
        message = str(exc) if isinstance(exc, AcademicHubError) else f"{type(exc).__name__}: {exc}"
        store.finish_delivery(hub.engine, row.id, me, hub.now(), "failed", message)
        with hub.engine.begin() as conn:
            store.record_channel_error(conn, channel.id, message, hub.now())
        raise
    store.finish_delivery(hub.engine, row.id, me, hub.now(), "sent")
    with hub.engine.begin() as conn:
        store.record_channel_error(conn, channel.id, None, hub.now())
    return SendResult("sent", message_id, answer)


def send_digest_now(hub: "Hub", radar: str, to: str, *, day: date | None = None, lang: str | None = None) -> SendResult:
    """`academichub digest send`: one radar's digest mailed to an address now, to check a mail
    set-up (no delivery record, no unsubscribe link: it belongs to no channel)."""
    from ..delivery.email import build_message, mail_setup, send_message
    from ..store.radars import get_radar

    setup = mail_setup(hub.settings)  # before any work: a missing set-up is said at once
    if "@" not in to:
        raise DeliveryError(f"{to!r} is not an e-mail address")
    with hub.engine.connect() as conn:
        found = get_radar(conn, radar)
    if found is None:
        raise NotFound(f"no radar {radar!r}")
    language = lang or (hub.settings.default_language if hub.settings.default_language in LANGS else "zh")
    digest = build_digest(hub, found.user_id, [found.id], lang=language, weekly=False,
                          period=(day.isoformat() if day else "latest"), day=day)
    if day is None and digest.sections:
        from ..store.feed import latest_announcement

        with hub.engine.connect() as conn:
            latest = latest_announcement(conn)
        digest.period = latest.isoformat() if latest else hub.now().date().isoformat()
    message_id = _message_id(hub, store.Channel(0, found.user_id, "email", to, None, found.id, "daily", language, True,
                                                None, None, hub.now()))
    answer = send_message(setup, build_message(digest, to=to, setup=setup, message_id=message_id, unsubscribe_url=None))
    return SendResult("sent", message_id, answer)


def request_test(hub: "Hub", user_id: int, channel_id: int) -> str:
    """The settings page's "send a test", off the request: a `test:` job on the hub's queue (a slow
    or dead mail server or webhook then holds a worker, not the page); its key. Without a queue (a
    process that consumes none) the job runs here at once. Either way its outcome is the ledger's
    (`latest_tests`) and its error the channel's, as a digest's."""
    from .jobs import Jobs

    with hub.engine.connect() as conn:
        channel = store.get_channel(conn, channel_id)
    if channel is None or channel.user_id != user_id:
        raise NotFound(f"no delivery channel {channel_id}")
    jobs = Jobs(hub, enqueue=hub.enqueue)
    key = jobs.request_test(user_id, channel_id)
    if hub.enqueue is None:
        jobs.execute(key)
    return key


def run_test(hub: "Hub", user_id: int, channel_id: int) -> SendResult:
    """The `test:` job: send the test; a refusal or a dead server is its outcome (`failed`, the
    error also on the channel), not a retry: a test is for now, the person is waiting to read it."""
    try:
        return test_send(hub, user_id, channel_id)
    except NotFound as exc:
        return SendResult("skipped", None, str(exc))
    except AcademicHubError as exc:
        return SendResult("failed", None, str(exc))


@dataclass(frozen=True, slots=True)
class ChannelTest:
    """A channel's latest test as the settings page shows it: queued (or running), sent, failed."""

    status: str
    at: datetime
    detail: str = ""


def latest_tests(hub: "Hub", channels: list[store.Channel]) -> dict[int, ChannelTest]:
    """Each channel's latest test, read from the job ledger (the channel row keeps only the error)."""
    from ..store import jobs as ledger

    found = {}
    with hub.engine.connect() as conn:
        for channel in channels:
            job = ledger.latest_of(conn, f"test:{channel.id}:")
            if job is None:
                continue
            if job.status in ("queued", "running"):
                found[channel.id] = ChannelTest("queued", job.created_at)
            elif job.status == "done":
                result = job.result or {}
                found[channel.id] = ChannelTest(str(result.get("status") or "sent"), job.finished_at or job.created_at,
                                                str(result.get("detail") or ""))
            else:
                found[channel.id] = ChannelTest("failed", job.finished_at or job.created_at, job.error or "")
    return found


def test_send(hub: "Hub", user_id: int, channel_id: int) -> SendResult:
    """A test of a channel (the `test:` job's work): the channel's digest now, marked test, outside
    the delivery record (it never stands for a period). The error, if any, lands on the channel."""
    with hub.engine.connect() as conn:
        channel = store.get_channel(conn, channel_id)
    if channel is None or channel.user_id != user_id:
        raise NotFound(f"no delivery channel {channel_id}")
    clock = _clock(hub, channel, None, None)
    period, _due = schedule.digest_period(clock, hub.now())
    try:
        digest = build_digest(hub, user_id, _channel_radars(hub, channel), lang=channel.lang,
                              weekly=channel.cadence == "weekly", period=period, channel_id=channel.id, test=True)
        answer = _send(hub, channel, digest, _message_id(hub, channel), lambda: True)
    except AcademicHubError as exc:
        with hub.engine.begin() as conn:
            store.record_channel_error(conn, channel.id, str(exc), hub.now())
        raise
    with hub.engine.begin() as conn:
        store.record_channel_error(conn, channel.id, None, hub.now())
    return SendResult("sent", None, answer)


# ----------------------------------------------------------------------------- what is due


def _clock(hub: "Hub", channel: store.Channel, zone: str | None, hour: int | None) -> schedule.ChannelClock:
    if zone is None and hour is None:  # the owner's clock
        with hub.engine.connect() as conn:
            for found, z, h in store.channel_owners(conn):
                if found.id == channel.id:
                    zone, hour = z, h
    return schedule.ChannelClock(channel.id, channel.radar_id, channel.cadence, zone or hub.settings.timezone,
                                 hub.settings.briefing_hour if hour is None else int(hour),
                                 schedule.as_naive(channel.created_at))


def channel_clocks(hub: "Hub", conn, *, user_id: int | None = None, radar_id: int | None = None) -> list[schedule.ChannelClock]:
    """Every enabled channel's clock (only the channels of `user_id` carrying `radar_id`, when given)."""
    return [_clock(hub, channel, zone or hub.settings.timezone, hour if hour is not None else hub.settings.briefing_hour)
            for channel, zone, hour in store.channel_owners(conn)
            if user_id is None or (channel.user_id == user_id and channel.radar_id in (None, radar_id))]


def due_for_radar(hub: "Hub", radar_id: int) -> list[schedule.JobIntent]:
    """The digest jobs due now for the channels that carry this radar (its own, and its owner's
    all-radars ones): chained after the radar's briefing, so they go out as soon as it is written."""
    from ..store import jobs as ledger

    now = hub.now()
    with hub.engine.connect() as conn:
        owner = store.radar_owner(conn, radar_id)
        if owner is None:
            return []
        clocks = channel_clocks(hub, conn, user_id=owner, radar_id=radar_id)
        keys = schedule.digest_candidate_keys(now, clocks)
        found = {**ledger.states(conn, None), **ledger.states(conn, keys)}
    entries = {key: schedule.LedgerEntry(job.status, job.params) for key, job in found.items()}
    return schedule.due_digests(now, clocks, entries)


# ----------------------------------------------------------------------------- signed links


@dataclass(frozen=True, slots=True)
class PendingAction:
    action: str
    radar_id: int
    radar_name: str
    paper_id: int
    paper_title: str


def read_action(hub: "Hub", token: str) -> PendingAction:
    """What a digest's signed link asks (BadSignature for a forged or expired one; NotFound when
    its radar or paper is gone). Reading acts on nothing: the confirm page's POST does."""
    from ..store.papers import paper_titles
    from ..store.radars import get_radar

    payload = verify(signing_key(hub.settings), ACTION_PURPOSE, token, now=hub.now().timestamp())
    try:
        user_id, radar_id, paper_id, action = int(payload["u"]), int(payload["r"]), int(payload["p"]), str(payload["a"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadSignature("invalid digest-action token") from exc
    if action not in ACTIONS:
        raise BadSignature("invalid digest-action token")
    with hub.engine.connect() as conn:
        radar = get_radar(conn, radar_id)
        titles = paper_titles(conn, [paper_id])
    if radar is None or radar.user_id != user_id or paper_id not in titles:
        raise NotFound("the radar or the paper of this link is gone")
    return PendingAction(action, radar_id, radar.name, paper_id, titles[paper_id])


def act(hub: "Hub", token: str) -> PendingAction:
    """The confirm page's POST: the link's feedback recorded (idempotent: twice is once)."""
    from ..store.radars import add_feedback

    pending = read_action(hub, token)
    with hub.engine.begin() as conn:
        add_feedback(conn, pending.radar_id, pending.paper_id, pending.action)
    return pending


def read_unsubscribe(hub: "Hub", token: str) -> store.Channel:
    payload = verify(signing_key(hub.settings), UNSUBSCRIBE_PURPOSE, token, now=hub.now().timestamp())
    try:
        channel_id = int(payload["c"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadSignature("invalid digest-unsubscribe token") from exc
    with hub.engine.connect() as conn:
        channel = store.get_channel(conn, channel_id)
    if channel is None:
        raise NotFound("this delivery channel no longer exists")
    return channel


def unsubscribe(hub: "Hub", token: str) -> store.Channel:
    """One-click unsubscribe (RFC 8058): the link's channel is turned off."""
    channel = read_unsubscribe(hub, token)
    with hub.engine.begin() as conn:
        store.disable_channel(conn, channel.id)
    return channel


# ----------------------------------------------------------------------------- the settings page


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    email: str | None
    channels: list[store.Channel]
    radars: list[tuple[int, str]]
    recent: list[store.Delivery]
    tests: dict[int, ChannelTest]


def settings_of(hub: "Hub", user_id: int | None) -> DeliverySettings:
    if user_id is None:
        return DeliverySettings(None, [], [], [], {})
    with hub.engine.connect() as conn:
        email, channels = store.user_email(conn, user_id), store.list_channels(conn, user_id)
        radars, recent = store.user_radars(conn, user_id), store.recent_deliveries(conn, user_id)
    return DeliverySettings(email, channels, radars, recent, latest_tests(hub, channels))


def _checked(hub: "Hub", user_id: int, kind: str, target: str, radar_id: int | None, cadence: str, lang: str) -> str:
    target = (target or "").strip()
    if kind not in store.KINDS:
        raise DeliveryError.translatable("unknown channel kind {kind!r}: use one of {kinds}", kind=kind, kinds=", ".join(store.KINDS))
    if cadence not in store.CADENCES:
        raise DeliveryError.translatable("cadence must be daily or weekly, not {cadence!r}", cadence=cadence)
    if lang not in LANGS:
        raise DeliveryError.translatable("language must be zh or en, not {lang!r}", lang=lang)
    if kind == "email":
        if not target:
            with hub.engine.connect() as conn:
                target = store.user_email(conn, user_id) or ""
        if "@" not in target or any(ch.isspace() for ch in target) or len(target) > 254:
            raise DeliveryError.translatable("{address!r} is not an e-mail address", address=target)
    else:
        from ..sources.safe_url import check_public_url

        try:
            target = check_public_url(target, allow_private=hub.settings.allow_private_urls)
        except AcademicHubError as exc:
            raise DeliveryError.translatable("the webhook URL is refused: {reason}", reason=str(exc)) from exc
    if radar_id is not None:
        with hub.engine.connect() as conn:
            if radar_id not in {rid for rid, _ in store.user_radars(conn, user_id)}:
                raise NotFound.translatable("no radar with id {id}", id=radar_id)
    return target


def add_channel(hub: "Hub", user_id: int, kind: str, target: str, *, secret: str | None = None,
                radar_id: int | None = None, cadence: str = "daily", lang: str = "zh") -> int:
    target = _checked(hub, user_id, kind, target, radar_id, cadence, lang)
    with hub.engine.begin() as conn:
        return store.add_channel(conn, user_id, kind, target, secret=(secret or "").strip() or None,
                                 radar_id=radar_id, cadence=cadence, lang=lang)


def update_channel(hub: "Hub", user_id: int, channel_id: int, *, target: str, secret: str | None, radar_id: int | None,
                   cadence: str, lang: str, enabled: bool) -> None:
    with hub.engine.connect() as conn:
        channel = store.get_channel(conn, channel_id)
    if channel is None or channel.user_id != user_id:
        raise NotFound(f"no delivery channel {channel_id}")
    target = _checked(hub, user_id, channel.kind, target, radar_id, cadence, lang)
    with hub.engine.begin() as conn:
        store.update_channel(conn, channel_id, user_id, target=target, secret=(secret or "").strip() or None,
                             radar_id=radar_id, cadence=cadence, lang=lang, enabled=enabled)


def remove_channel(hub: "Hub", user_id: int, channel_id: int) -> None:
    with hub.engine.begin() as conn:
        if not store.remove_channel(conn, channel_id, user_id):
            raise NotFound(f"no delivery channel {channel_id}")


def set_email(hub: "Hub", user_id: int, email: str | None) -> None:
    email = (email or "").strip() or None
    if email is not None and ("@" not in email or any(ch.isspace() for ch in email) or len(email) > 254):
        raise DeliveryError.translatable("{address!r} is not an e-mail address", address=email)
    with hub.engine.begin() as conn:
        store.set_user_email(conn, user_id, email)


def masked(secret: str | None) -> str:
    """A stored secret as the settings page shows it again: its last 4 characters at most."""
    if not secret:
        return ""
    return "••••" + (secret[-4:] if len(secret) >= 12 else "")


__all__ = [
    "ACTIONS", "DIGEST_PAPERS", "ChannelTest", "DeliveryBusy", "DeliveryError", "DeliverySettings", "PendingAction",
    "SendResult", "act", "add_channel", "base_url", "build_digest", "channel_clocks", "deliver_channel", "due_for_radar",
    "latest_tests", "masked", "read_action", "read_unsubscribe", "remove_channel", "request_test", "run_test",
    "send_digest_now", "set_email", "settings_of", "test_send", "unsubscribe", "update_channel",
]
