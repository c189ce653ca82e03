"""The radar store: who a radar belongs to, what it follows (rules), the papers it starts from
(seeds), what its reader said (feedback) and what it has shown each day. The ranking reads these;
nothing here ranks.

Rules are matched by `value_key`, never by what the user typed: "C. Balázs", "Csaba Balazs" and
"Bal\\'azs, C." are one author rule, "Graph  Neural-Networks" and "graph neural networks" one
keyword, so adding a variant twice is a no-op and matching is a plain equality. Every function
takes an open Connection; the caller owns the transaction."""

from __future__ import annotations

import re
import unicodedata
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable, Iterator

from sqlalchemy import Connection, delete, func, insert, select, update

from ..errors import AcademicHubError
from ..names import name_key
from ..sources.arxiv_ids import parse_arxiv_id
from ..sources.arxiv_rss import ARCHIVES
from .schema import papers, radar_feedback, radar_rules, radar_seeds, radar_shown, radars, saved_papers, users
from .state import row_id, utcnow

DEFAULT_USER = "local"
RULE_KINDS = ("author", "mute_author", "keyword", "exclude", "category", "venue")
FEEDBACK_ACTIONS = ("like", "save", "dismiss", "less_author", "less_topic")
_PAPER_ACTIONS = ("like", "save", "dismiss")  # about one paper; repeating one changes nothing
_NAME_MAX = radars.c.name.type.length
_KEY_MAX = radar_rules.c.value_key.type.length
_ORIGIN_MAX = radar_seeds.c.origin.type.length
# arXiv's category codes: an archive (hep-th, astro-ph, math) optionally with a subject class,
# two capitals (cs.LG, math.CO, astro-ph.GA) except in the archives whose classes are words
# (cond-mat.stat-mech, physics.optics).
_ARCHIVE = re.compile(r"^[a-z]+(?:-[a-z]+)?$")
_SUBJECT_LETTERS = re.compile(r"^[A-Z]{2}$")
_SUBJECT_WORDS = re.compile(r"^[a-z]+(?:-[a-z]+)?$")
_WORD_SUBJECT_ARCHIVES = frozenset({"cond-mat", "physics"})
_ORCID = re.compile(r"(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")


class RadarError(AcademicHubError):
    """A radar operation the store refuses: a taken name, an unknown radar, a malformed rule."""


@dataclass(slots=True)
class Rule:
    kind: str
    value_key: str  # what matching uses
    value: str  # as the user wrote it
    orcid: str | None = None


@dataclass(slots=True)
class Feedback:
    id: int
    paper_id: int | None
    action: str
    value: str | None
    created_at: datetime


@dataclass(slots=True)
class Radar:
    id: int
    user_id: int
    name: str
    interest: str | None
    settings: dict
    created_at: datetime
    updated_at: datetime
    rules: dict[str, list[Rule]] = field(default_factory=dict)  # kind -> rules, every kind present
    seeds: list[int] = field(default_factory=list)  # paper ids, in the order they were added
    feedback: list[Feedback] = field(default_factory=list)  # oldest first


# ----------------------------------------------------------------------------- keys


def phrase_key(text: str) -> str:
    """A keyword, excluded phrase or venue as matching sees it: case and accents folded,
    punctuation and hyphens as spaces, spaces collapsed. Letters of any script survive
    ("图神经网络" stays), and so do "+" and "#" ("C++", "C#")."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(re.sub(r"[^\w+#]+|_", " ", stripped).split())


def rule_key(kind: str, value: str) -> str:
    """The value_key of a rule; RadarError names what is wrong with the value."""
    if kind not in RULE_KINDS:
        raise RadarError.translatable("unknown rule kind {kind!r}: use one of {kinds}", kind=kind, kinds=", ".join(RULE_KINDS))
    value = " ".join((value or "").split())
    if not value:
        raise RadarError.translatable("empty {kind} rule", kind=kind.replace("_", " "))
    if kind in ("author", "mute_author"):
        key = name_key(value)
        if not key:
            raise RadarError.translatable("{value!r} is not an author name", value=value)
    elif kind == "category":
        key = category_key(value)
    elif kind == "venue":
        key = _venue_key(value)
    else:
        key = phrase_key(value)
    if not key:
        raise RadarError.translatable("{kind} {value!r} has no letters or digits to match", kind=kind, value=value)
    return key[:_KEY_MAX]


def category_key(value: str) -> str:
    """An arXiv category as arXiv spells it ("cs.lg" is cs.LG); a code no arXiv archive has is refused."""
    archive, dot, subject = value.strip().partition(".")
    archive = archive.lower()
    if archive in _WORD_SUBJECT_ARCHIVES:
        subject, shape = subject.lower(), _SUBJECT_WORDS
    else:
        subject, shape = subject.upper(), _SUBJECT_LETTERS
    if not _ARCHIVE.match(archive) or archive not in ARCHIVES or (dot and not shape.match(subject)):
        raise RadarError.translatable("{value!r} is not an arXiv category (like cs.LG, hep-th, math.CO, cond-mat.stat-mech)", value=value)
    return f"{archive}.{subject}" if dot else archive


def _venue_key(value: str) -> str:
    """A venue the catalog knows is keyed by its name, so "PRL" and "Phys. Rev. Lett." are one rule."""
    from ..venues import find_venue

    try:
        venue = find_venue(value)
    except AcademicHubError:  # a broken user catalog must not stop a rule from being added
        venue = None
    return phrase_key(venue.name if venue else value)


# ----------------------------------------------------------------------------- users and radars


# Whose radars a name or id means when a caller names no user: the web sets it to the request's
# viewer for the whole request (web/identity.py), the CLI to `--user` (or the single account), so
# every lookup below the front end is that user's without threading a user id through each call.
_acting_user: ContextVar[int | None] = ContextVar("academichub_acting_user", default=None)


@contextmanager
def acting_as(user_id: int | None) -> Iterator[None]:
    """Within the block, radar lookups that name no user are `user_id`'s (None: the default owner)."""
    token = _acting_user.set(user_id)
    try:
        yield
    finally:
        _acting_user.reset(token)


def act_for_process(user_id: int | None) -> None:
    """The acting user from now on in this context (a CLI command's `--user`)."""
    _acting_user.set(user_id)


def acting_user() -> int | None:
    return _acting_user.get()


def _default_owner(conn: Connection) -> int | None:
    """The acting user; else the one account when exactly one exists (it took over the local user's
    radars); else the implicit local user (None before it exists)."""
    acting = _acting_user.get()
    if acting is not None:
        return acting
    accounts = conn.execute(select(users.c.id).where(users.c.email.is_not(None)).limit(2)).scalars().all()
    if len(accounts) == 1:
        return accounts[0]
    return conn.execute(select(users.c.id).where(users.c.name == DEFAULT_USER, users.c.email.is_(None))).scalar()


def default_user(conn: Connection) -> int:
    """Whose radars a new one joins when no user is named: the acting user, the single account, else
    the single local user every radar belongs to until accounts exist (created on first use)."""
    found = _default_owner(conn)
    if found is not None:
        return found
    return conn.execute(
        insert(users).values(name=DEFAULT_USER, created_at=utcnow()).returning(users.c.id)
    ).scalar_one()


def create_radar(
    conn: Connection, *, user_id: int, name: str, interest: str | None = None, settings: dict | None = None
) -> int:
    name = " ".join((name or "").split())
    if not name:
        raise RadarError.translatable("a radar needs a name")
    if len(name) > _NAME_MAX:
        raise RadarError.translatable("radar name is longer than {limit} characters", limit=_NAME_MAX)
    if name.isdigit():
        raise RadarError.translatable("radar name {name!r} is all digits: it would read as a radar id", name=name)
    taken = conn.execute(select(radars.c.id).where(radars.c.user_id == user_id, radars.c.name == name)).scalar()
    if taken is not None:
        raise RadarError.translatable("a radar named {name!r} already exists", name=name)
    now = utcnow()
    return conn.execute(
        insert(radars)
        .values(user_id=user_id, name=name, interest=_interest(interest), settings=settings or {}, created_at=now, updated_at=now)
        .returning(radars.c.id)
    ).scalar_one()


def _interest(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


def radar_id_of(conn: Connection, name_or_id: int | str, user_id: int | None = None) -> int | None:
    """The id of a radar given by id (an int or digits) or by name (the user's, or the local user's)."""
    if user_id is None:
        user_id = _acting_user.get()
    if (number := row_id(name_or_id)) is not None or str(name_or_id).strip().isdigit():
        if number is None:
            return None  # digits, but not an id ('²', 40 of them): no radar has such a name either
        query = select(radars.c.id).where(radars.c.id == number)
        if user_id is not None:
            query = query.where(radars.c.user_id == user_id)
        return conn.execute(query).scalar()
    name = " ".join(str(name_or_id).split())
    if user_id is None:
        user_id = _default_owner(conn)
        if user_id is None:
            return None
    return conn.execute(select(radars.c.id).where(radars.c.user_id == user_id, radars.c.name == name)).scalar()


def require_radar(conn: Connection, name_or_id: int | str, user_id: int | None = None) -> int:
    radar_id = radar_id_of(conn, name_or_id, user_id)
    if radar_id is None:
        raise RadarError.translatable("no radar {name!r}", name=str(name_or_id))
    return radar_id


def get_radar(conn: Connection, name_or_id: int | str, user_id: int | None = None) -> Radar | None:
    """A radar with its rules (by kind), seed paper ids and feedback."""
    radar_id = radar_id_of(conn, name_or_id, user_id)
    if radar_id is None:
        return None
    row = conn.execute(select(radars).where(radars.c.id == radar_id)).mappings().one()
    radar = Radar(
        id=row["id"], user_id=row["user_id"], name=row["name"], interest=row["interest"],
        settings=dict(row["settings"] or {}), created_at=row["created_at"], updated_at=row["updated_at"],
        rules={kind: [] for kind in RULE_KINDS},
    )
    for kind, value_key, value, orcid in conn.execute(
        select(radar_rules.c.kind, radar_rules.c.value_key, radar_rules.c.value, radar_rules.c.orcid)
        .where(radar_rules.c.radar_id == radar_id)
        .order_by(radar_rules.c.kind, radar_rules.c.value_key)
    ):
        radar.rules.setdefault(kind, []).append(Rule(kind, value_key, value, orcid))
    radar.seeds = list(
        conn.execute(
            select(radar_seeds.c.paper_id).where(radar_seeds.c.radar_id == radar_id)
            .order_by(radar_seeds.c.added_at, radar_seeds.c.paper_id)
        ).scalars()
    )
    radar.feedback = [
        Feedback(*row)
        for row in conn.execute(
            select(radar_feedback.c.id, radar_feedback.c.paper_id, radar_feedback.c.action, radar_feedback.c.value,
                   radar_feedback.c.created_at)
            .where(radar_feedback.c.radar_id == radar_id)
            .order_by(radar_feedback.c.id)
        )
    ]
    return radar


@dataclass(slots=True)
class RadarSummary:
    id: int
    name: str
    interest: str | None
    rules: int
    seeds: int
    feedback: int


def list_radars(conn: Connection, user_id: int | None = None) -> list[RadarSummary]:
    """Every radar of a user (all users' when None), by name, with how much each holds."""
    def count(table):
        return select(func.count()).select_from(table).where(table.c.radar_id == radars.c.id).scalar_subquery()

    query = select(
        radars.c.id, radars.c.name, radars.c.interest, count(radar_rules), count(radar_seeds), count(radar_feedback)
    ).order_by(radars.c.name, radars.c.id)
    if user_id is not None:
        query = query.where(radars.c.user_id == user_id)
    return [RadarSummary(*row) for row in conn.execute(query)]


def delete_radar(conn: Connection, radar_id: int) -> None:
    """The radar and everything it holds (rules, seeds, feedback, shown); the papers stay."""
    for table in (radar_rules, radar_seeds, radar_feedback, radar_shown):  # SQLite may run without FK cascades
        conn.execute(delete(table).where(table.c.radar_id == radar_id))
    conn.execute(update(saved_papers).where(saved_papers.c.radar_id == radar_id).values(radar_id=None))  # the list stays
    if not conn.execute(delete(radars).where(radars.c.id == radar_id)).rowcount:
        raise RadarError.translatable("no radar with id {id}", id=radar_id)


def set_interest(conn: Connection, radar_id: int, interest: str | None) -> None:
    _touch(conn, radar_id, interest=_interest(interest))


def _touch(conn: Connection, radar_id: int, **values) -> None:
    done = conn.execute(update(radars).where(radars.c.id == radar_id).values(updated_at=utcnow(), **values))
    if not done.rowcount:
        raise RadarError.translatable("no radar with id {id}", id=radar_id)


# ----------------------------------------------------------------------------- rules


def add_rule(conn: Connection, radar_id: int, kind: str, value: str, orcid: str | None = None) -> Rule:
    """Add a rule; a variant of a rule already there (same key) changes nothing and returns it.

    An author followed and then muted (or the reverse) keeps only the latest of the two."""
    key = rule_key(kind, value)
    value = " ".join(value.split())
    orcid = _orcid(orcid) if orcid else None
    existing = conn.execute(
        select(radar_rules.c.value, radar_rules.c.orcid).where(
            radar_rules.c.radar_id == radar_id, radar_rules.c.kind == kind, radar_rules.c.value_key == key
        )
    ).first()
    if existing is not None:
        if orcid and not existing.orcid:
            conn.execute(
                update(radar_rules)
                .where(radar_rules.c.radar_id == radar_id, radar_rules.c.kind == kind, radar_rules.c.value_key == key)
                .values(orcid=orcid)
            )
            _touch(conn, radar_id)
        return Rule(kind, key, existing.value, orcid or existing.orcid)
    opposite = {"author": "mute_author", "mute_author": "author"}.get(kind)
    if opposite:
        conn.execute(
            delete(radar_rules).where(
                radar_rules.c.radar_id == radar_id, radar_rules.c.kind == opposite, radar_rules.c.value_key == key
            )
        )
    _touch(conn, radar_id)
    conn.execute(insert(radar_rules).values(radar_id=radar_id, kind=kind, value_key=key, value=value, orcid=orcid))
    return Rule(kind, key, value, orcid)


def _orcid(value: str) -> str:
    match = _ORCID.search(value.strip().upper().rstrip("/"))
    if not match:
        raise RadarError.translatable("{value!r} is not an ORCID iD (0000-0002-1825-0097)", value=value)
    return match.group(1)


def remove_rule(conn: Connection, radar_id: int, kind: str, value: str) -> bool:
    """Remove the rule this value (or any variant of it) names; False when there was none."""
    key = rule_key(kind, value)
    done = conn.execute(
        delete(radar_rules).where(
            radar_rules.c.radar_id == radar_id, radar_rules.c.kind == kind, radar_rules.c.value_key == key
        )
    )
    if done.rowcount:
        _touch(conn, radar_id)
    return bool(done.rowcount)


# ----------------------------------------------------------------------------- seeds and feedback


def find_paper(conn: Connection, ref: str | int) -> int | None:
    """A paper as a reader names it: store id, arXiv id (any spelling, with or without version)
    or DOI (bare, doi: or https://doi.org/…)."""
    from ..identifiers import norm_identifier
    from .papers import find_by_identifiers

    text = str(ref).strip()
    if (number := row_id(text)) is not None:
        return conn.execute(select(papers.c.id).where(papers.c.id == number)).scalar()
    keys = []
    if (doi := norm_identifier("doi", text)) is not None:
        keys.append(doi)
    try:
        keys.append(("arxiv", parse_arxiv_id(text)[0]))
    except AcademicHubError:
        pass
    found = find_by_identifiers(conn, keys)
    return next((found[k] for k in keys if k in found), None)



def add_seeds(conn: Connection, radar_id: int, paper_ids: Iterable[int], origin: str | None = None) -> int:
    """Make papers seeds of the radar; returns how many were new (a seed added twice stays one)."""
    wanted = list(dict.fromkeys(int(p) for p in paper_ids))
    if not wanted:
        return 0
    _touch(conn, radar_id)
    known: set[int] = set()
    present: set[int] = set()
    for start in range(0, len(wanted), 900):
        chunk = wanted[start : start + 900]
        known.update(conn.execute(select(papers.c.id).where(papers.c.id.in_(chunk))).scalars())
        present.update(
            conn.execute(
                select(radar_seeds.c.paper_id).where(radar_seeds.c.radar_id == radar_id, radar_seeds.c.paper_id.in_(chunk))
            ).scalars()
        )
    missing = [p for p in wanted if p not in known]
    if missing:
        raise RadarError.translatable("no paper with id {ids}", ids=", ".join(map(str, missing[:5])) + (" …" if len(missing) > 5 else ""))
    now = utcnow()
    rows = [
        {"radar_id": radar_id, "paper_id": p, "origin": (origin or None) and origin[:_ORIGIN_MAX], "added_at": now}
        for p in wanted
        if p not in present
    ]
    if rows:
        conn.execute(insert(radar_seeds), rows)
    return len(rows)


def remove_seeds(conn: Connection, radar_id: int, paper_ids: Iterable[int]) -> int:
    ids = list(dict.fromkeys(int(p) for p in paper_ids))
    done = conn.execute(delete(radar_seeds).where(radar_seeds.c.radar_id == radar_id, radar_seeds.c.paper_id.in_(ids)))
    return done.rowcount


def add_feedback(conn: Connection, radar_id: int, paper_id: int | None, action: str, value: str | None = None) -> int:
    """Record what the reader said; returns the feedback id.

    like/save/dismiss are about one paper and idempotent (the same press twice is one row); a
    save also puts the paper on the radar owner's reading list (once per user);
    less_author/less_topic name an author or topic in `value`, or let the paper's own stand for it."""
    action = action.replace("-", "_")
    if action not in FEEDBACK_ACTIONS:
        raise RadarError.translatable("unknown feedback {action!r}: use one of {actions}", action=action, actions=", ".join(FEEDBACK_ACTIONS))
    value = " ".join(value.split()) if value else None
    if action in _PAPER_ACTIONS and paper_id is None:
        raise RadarError.translatable("{action} needs a paper", action=action)
    if action not in _PAPER_ACTIONS and paper_id is None and not value:
        raise RadarError.translatable("{action} needs a paper or a value (the {what})", action=action.replace("_", "-"), what=action[5:])
    if conn.execute(select(radars.c.id).where(radars.c.id == radar_id)).scalar() is None:
        raise RadarError.translatable("no radar with id {id}", id=radar_id)
    if paper_id is not None and conn.execute(select(papers.c.id).where(papers.c.id == paper_id)).scalar() is None:
        raise RadarError.translatable("no paper with id {ids}", ids=paper_id)
    same = select(radar_feedback.c.id).where(
        radar_feedback.c.radar_id == radar_id,
        radar_feedback.c.action == action,
        radar_feedback.c.paper_id.is_(None) if paper_id is None else radar_feedback.c.paper_id == paper_id,
        radar_feedback.c.value.is_(None) if value is None else radar_feedback.c.value == value,
    )
    if action == "save":  # a radar's ★ puts the paper on its owner's reading list too (store/saved.py)
        from .saved import add_saved

        owner = conn.execute(select(radars.c.user_id).where(radars.c.id == radar_id)).scalar_one()
        add_saved(conn, owner, paper_id, radar_id=radar_id)
    existing = conn.execute(same).scalar()
    if existing is not None:
        return existing
    return conn.execute(
        insert(radar_feedback)
        .values(radar_id=radar_id, paper_id=paper_id, action=action, value=value, created_at=utcnow())
        .returning(radar_feedback.c.id)
    ).scalar_one()


def reset_learning(conn: Connection, radar_id: int) -> int:
    """Forget what the radar learnt from feedback; rules, seeds and interest stay. Returns rows removed."""
    _touch(conn, radar_id)
    return conn.execute(delete(radar_feedback).where(radar_feedback.c.radar_id == radar_id)).rowcount


# ----------------------------------------------------------------------------- shown


def shown_today(conn: Connection, radar_id: int, day: date) -> set[int]:
    """Papers the radar already showed on `day`, so "more" never repeats one."""
    return set(
        conn.execute(
            select(radar_shown.c.paper_id).where(radar_shown.c.radar_id == radar_id, radar_shown.c.day == day)
        ).scalars()
    )


def shown_batches(conn: Connection, radar_id: int, day: date) -> dict[int, int]:
    """paper id -> the batch it was shown in on `day` (batch N again shows exactly these)."""
    return dict(
        conn.execute(
            select(radar_shown.c.paper_id, radar_shown.c.batch).where(
                radar_shown.c.radar_id == radar_id, radar_shown.c.day == day
            )
        ).all()
    )


def clear_shown(conn: Connection, radar_id: int, day: date) -> None:
    """Forget what the radar showed on `day`: its batches start over."""
    conn.execute(delete(radar_shown).where(radar_shown.c.radar_id == radar_id, radar_shown.c.day == day))


def default_user_id(conn: Connection) -> int | None:
    """default_user's id, or None before one exists (reading never creates it)."""
    return _default_owner(conn)


def mark_shown(conn: Connection, radar_id: int, day: date, paper_ids: Iterable[int], batch: int) -> int:
    """Record papers shown on `day` in `batch`; one already shown that day keeps its first batch."""
    ids = list(dict.fromkeys(int(p) for p in paper_ids))
    already = shown_today(conn, radar_id, day)  # once, not once per paper
    fresh = [p for p in ids if p not in already]
    if fresh:
        conn.execute(
            insert(radar_shown), [{"radar_id": radar_id, "day": day, "paper_id": p, "batch": batch} for p in fresh]
        )
    return len(fresh)


__all__ = [
    "FEEDBACK_ACTIONS", "RULE_KINDS", "Feedback", "Radar", "RadarError", "RadarSummary", "Rule", "add_feedback",
    "act_for_process", "acting_as", "acting_user", "add_rule", "add_seeds", "create_radar", "default_user", "delete_radar", "get_radar", "list_radars",
    "category_key", "clear_shown", "default_user_id", "find_paper", "mark_shown", "shown_batches", "phrase_key", "radar_id_of", "remove_rule", "remove_seeds", "require_radar", "reset_learning",
    "rule_key", "set_interest", "shown_today",
]


def all_radar_ids(conn: Connection) -> list[int]:
    """Every radar's id, of every user (the jobs that keep their rankings current)."""
    return list(conn.execute(select(radars.c.id).order_by(radars.c.id)).scalars())
