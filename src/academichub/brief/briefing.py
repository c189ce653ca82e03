"""Orchestration and caching: papers in, a stored briefing out.

`make_briefing` loads the papers (numbered in the order given), analyses them (and the previous
period's papers, for "what changed"), writes the briefing with the configured LLM or, without
one or when the LLM fails, extractively, and stores it. The same radar, period, language and
paper set (hash of the ordered ids) returns the stored briefing; `regenerate=True` writes a new
one and marks the old one superseded (kept). `render_markdown` and `to_json` present it.
Whatever the LLM does (an error, an answer that is not a completion, even a bug in reading it),
the briefing falls back to the extractive one and says why (`fallback_reason`)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.engine import Engine

from ..store import briefings as store
from ..store.state import as_utc, utcnow
from .analysis import ANALYSIS_VERSION, Analysis, analyze
from .extractive import LABELS, extractive_briefing
from .inputs import papers_from_store
from .llm import ChatClient, LLMConfig
from .schema import BriefingDoc, DocSentence, LLMRun, write_with_llm

log = logging.getLogger(__name__)

LANGS = ("zh", "en")


@dataclass(slots=True)
class Briefing:
    id: int | None
    radar_id: int | None
    period: tuple[date, date]
    lang: str
    kind: str  # llm | extractive
    model: str | None
    doc: BriefingDoc
    analysis: Analysis
    paper_ids: list[int]
    paper_hash: str
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    created_at: datetime | None = None
    fallback_reason: str | None = None
    superseded_at: datetime | None = None
    cached: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def papers(self) -> list[dict]:
        return self.analysis.papers

    def paper(self, n: int) -> dict | None:
        if 1 <= n <= len(self.analysis.papers):
            return self.analysis.papers[n - 1]
        return None


def normalise_lang(lang: str | None) -> str:
    value = (lang or "").strip().lower().replace("_", "-").split("-", 1)[0]
    if value not in LANGS:
        raise ValueError(f"briefing language must be zh or en, not {lang!r}")
    return value


def periods(day: date, week: bool) -> tuple[tuple[date, date], tuple[date, date]]:
    """(the period, the one before it): `day`, or the 7 days ending on it, and as many days before
    (for "what changed"). Days before 0001-01-01 do not exist: near it both stop there rather
    than overflow."""
    length = 7 if week else 1

    def back(d: date, days: int) -> date:
        return date.fromordinal(max(1, d.toordinal() - days))

    start = back(day, length - 1)
    previous_end = back(start, 1)
    return (start, day), (back(previous_end, length - 1), previous_end)


def _from_row(row: dict, *, cached: bool) -> Briefing:
    return Briefing(
        id=row["id"], radar_id=row["radar_id"], period=(_day(row["period_start"]), _day(row["period_end"])),
        lang=row["lang"], kind=row["kind"], model=row["model"], doc=BriefingDoc.model_validate(row["content"]),
        analysis=Analysis.from_dict(row["analysis"]), paper_ids=list(row["paper_ids"]), paper_hash=row["paper_hash"],
        tokens_in=row["tokens_in"], tokens_out=row["tokens_out"], cost=row["cost"], created_at=row["created_at"],
        fallback_reason=row["fallback_reason"], superseded_at=row["superseded_at"], cached=cached,
    )


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def stored_briefing(engine: Engine, *, radar_id: int | None, paper_ids: list[int], period: tuple[date, date],
                    lang: str) -> Briefing | None:
    """The current stored briefing of exactly this key, or None (never generates)."""
    lang = normalise_lang(lang)
    with engine.connect() as conn:
        row = store.find_current(conn, radar_id=radar_id, start=period[0], end=period[1], lang=lang,
                                 hash_=store.paper_hash(paper_ids))
    return _from_row(row, cached=True) if row else None


def latest_briefing(engine: Engine, *, radar_id: int | None, period: tuple[date, date], lang: str) -> Briefing | None:
    """The newest current briefing of a radar and period, whatever its papers (never generates)."""
    with engine.connect() as conn:
        row = store.latest(conn, radar_id=radar_id, start=period[0], end=period[1], lang=normalise_lang(lang))
    return _from_row(row, cached=True) if row else None


def _previous_analysis(conn, model: str | None, previous_paper_ids: list[int] | None,
                       radar_id: int | None) -> Analysis | None:
    if not previous_paper_ids:
        return None
    stored = store.find_analysis(conn, hash_=store.paper_hash(previous_paper_ids), radar_id=radar_id)
    if stored and stored.get("version") == ANALYSIS_VERSION:
        return Analysis.from_dict(stored)
    previous = papers_from_store(conn, previous_paper_ids, model)
    return analyze(previous, None) if previous else None


def make_briefing(
    engine: Engine,
    *,
    radar_id: int | None,
    paper_ids: list[int],
    period: tuple[date, date],
    lang: str,
    settings,
    regenerate: bool = False,
    previous_paper_ids: list[int] | None = None,
    client: ChatClient | None = None,
) -> Briefing:
    """The briefing of these papers (ranked order: [1] is the first) for a radar and period."""
    lang = normalise_lang(lang)
    ids = list(dict.fromkeys(int(i) for i in paper_ids))
    hash_ = store.paper_hash(ids)
    start, end = period
    timings: dict[str, float] = {}
    if not regenerate:
        with engine.connect() as conn:
            row = store.find_current(conn, radar_id=radar_id, start=start, end=end, lang=lang, hash_=hash_)
        if row is not None:
            return _from_row(row, cached=True)

    clock = time.perf_counter()
    model = getattr(settings, "embedding_model", None)
    with engine.connect() as conn:
        papers = papers_from_store(conn, ids, model)
        previous = _previous_analysis(conn, model, previous_paper_ids, radar_id)
    timings["load"] = time.perf_counter() - clock
    clock = time.perf_counter()
    analysis = analyze(papers, previous)
    timings["analysis"] = time.perf_counter() - clock

    clock = time.perf_counter()
    config = LLMConfig.from_settings(settings)
    kind, model_name, fallback, notes = "extractive", None, None, []
    tokens_in = tokens_out = 0
    cost = 0.0
    doc: BriefingDoc | None = None
    if config is not None and papers:
        try:
            run = write_with_llm(client or ChatClient(config), papers, analysis, lang)
        except Exception as exc:  # noqa: BLE001 - the LLM is optional: nothing it does may cost the briefing
            log.exception("the LLM briefing failed unexpectedly")
            run = LLMRun(model=config.model, error=f"the LLM client failed unexpectedly: {type(exc).__name__}")
        tokens_in, tokens_out = run.tokens_in, run.tokens_out
        cost = config.cost(tokens_in, tokens_out)
        model_name = run.model
        if run.doc is not None:
            doc, kind = run.doc, "llm"
            doc.notes.extend(run.notes)
        else:
            fallback = run.error or "the LLM gave no usable answer"
            log.warning("LLM briefing failed, falling back to the extractive one: %s", fallback)
            notes = [LABELS[lang]["fallback"]]
    if doc is None:
        doc = extractive_briefing(papers, analysis, lang, notes=notes)
    timings["write"] = time.perf_counter() - clock

    now = utcnow()
    values = dict(
        radar_id=radar_id, period_start=start, period_end=end, lang=lang, paper_hash=hash_,
        paper_ids=[p.paper_id for p in papers] if papers else ids, kind=kind, model=model_name,
        analysis=analysis.to_dict(), content=doc.model_dump(mode="json"), tokens_in=tokens_in, tokens_out=tokens_out,
        cost=cost, fallback_reason=fallback, created_at=now, superseded_at=None,
    )
    with engine.begin() as conn:
        store.supersede(conn, radar_id=radar_id, start=start, end=end, lang=lang, hash_=hash_, now=now)
        briefing_id = store.insert_briefing(conn, values)
    return Briefing(
        id=briefing_id, radar_id=radar_id, period=(start, end), lang=lang, kind=kind, model=model_name, doc=doc,
        analysis=analysis, paper_ids=values["paper_ids"], paper_hash=hash_, tokens_in=tokens_in, tokens_out=tokens_out,
        cost=cost, created_at=now, fallback_reason=fallback, cached=False, timings=timings,
    )


def unstored_extractive(engine: Engine, *, radar_id: int | None, paper_ids: list[int], period: tuple[date, date],
                        lang: str, model: str | None = None) -> Briefing:
    """The extractive briefing of these papers, made and NOT stored (no LLM, no write): for a reader
    that must not change the store, such as a feed reader's GET."""
    lang = normalise_lang(lang)
    ids = list(dict.fromkeys(int(i) for i in paper_ids))
    with engine.connect() as conn:
        papers = papers_from_store(conn, ids, model)
    analysis = analyze(papers, None)
    doc = extractive_briefing(papers, analysis, lang)
    return Briefing(id=None, radar_id=radar_id, period=period, lang=lang, kind="extractive", model=None, doc=doc,
                    analysis=analysis, paper_ids=[p.paper_id for p in papers], paper_hash=store.paper_hash(ids))


# ----------------------------------------------------------------------------- presenting


def paper_link(briefing: Briefing, n: int, *, link: str = "page", base_url: str = "") -> str | None:
    """Where citation [n] points: "card" the feed card (/#paper-<id>), "page" the paper page
    (/papers/<id>), "source" the paper's own URL (arXiv, DOI) when known."""
    paper = briefing.paper(n)
    if paper is None:
        return None
    if link == "source" and paper.get("url"):
        return paper["url"]
    if link == "card":
        return f"{base_url}/#paper-{paper['paper_id']}"
    return f"{base_url}/papers/{paper['paper_id']}"


def _md_escape(text: str) -> str:
    """Text that cannot become Markdown links, HTML or code: brackets, angle brackets, backticks
    and asterisks are escaped (LaTeX backslashes and underscores stay as written)."""
    return "".join("\\" + ch if ch in "[]<>`*" else ch for ch in text)


def _md_cites(briefing: Briefing, numbers: list[int], link: str, base_url: str) -> str:
    parts = []
    for n in numbers:
        target = paper_link(briefing, n, link=link, base_url=base_url)
        parts.append(f"[\\[{n}\\]]({target})" if target else f"\\[{n}\\]")
    return "".join(parts)


def _md_sentence(briefing: Briefing, sentence: DocSentence, link: str, base_url: str) -> str:
    cites = _md_cites(briefing, sentence.cite, link, base_url)
    if sentence.quote:
        title = f"*{_md_escape(' '.join(sentence.title.split()))}*: " if sentence.title else ""
        return f"{title}“{_md_escape(sentence.text)}” {cites}".rstrip()
    return f"{_md_escape(sentence.text)} {cites}".rstrip()


def render_markdown(briefing: Briefing, *, link: str = "page", base_url: str = "") -> str:
    """The briefing as Markdown; citations [n] link to the paper (see paper_link)."""
    doc = briefing.doc
    labels = LABELS[briefing.lang]
    start, end = briefing.period
    period = start.isoformat() if start == end else f"{start.isoformat()} – {end.isoformat()}"
    lines = [f"# {_md_sentence(briefing, doc.headline, link, base_url)}", ""]
    meta = [doc.label, period]
    if briefing.model:
        meta.append(briefing.model)
    lines += [f"*{_md_escape(' · '.join(meta))}*", ""]
    for note in doc.notes:
        lines += [f"> {_md_escape(note)}", ""]
    if doc.themes:
        lines += [f"## {labels['themes']}", ""]
        for index, theme in enumerate(doc.themes, start=1):
            lines += [f"### {index}. {_md_escape(theme.title)}", ""]
            prose = [s for s in theme.sentences if not s.quote]
            quotes = [s for s in theme.sentences if s.quote]
            if prose:
                lines += [" ".join(_md_sentence(briefing, s, link, base_url) for s in prose), ""]
            for quote in quotes:
                lines.append(f"- {_md_sentence(briefing, quote, link, base_url)}")
            if quotes:
                lines.append("")
    if doc.links:
        lines += [f"## {labels['links']}", ""]
        for item in doc.links:
            a, b = briefing.paper(item.a) or {}, briefing.paper(item.b) or {}
            head = (f"{_md_cites(briefing, [item.a], link, base_url)} {_md_escape(a.get('title', ''))} ({_md_escape(item.field_a)}) ↔ "
                    f"{_md_cites(briefing, [item.b], link, base_url)} {_md_escape(b.get('title', ''))} ({_md_escape(item.field_b)})")
            lines.append(f"- {head}: {_md_sentence(briefing, item.why, link, base_url)}")
        lines.append("")
    if doc.picks:
        lines += [f"## {labels['picks']}", ""]
        for index, pick in enumerate(doc.picks, start=1):
            paper = briefing.paper(pick.n) or {}
            line = pick.line
            if line.quote:
                text = f"“{_md_escape(line.text)}”"
            else:
                text = _md_escape(line.text)
            lines.append(f"{index}. {_md_cites(briefing, [pick.n], link, base_url)} **{_md_escape(paper.get('title', ''))}**: {text}")
        lines.append("")
    if doc.changes:
        lines += [f"## {labels['changes']}", ""]
        for change in doc.changes:
            lines.append(f"- {_md_sentence(briefing, change.text, link, base_url)}")
        lines.append("")
    if briefing.papers:
        lines += [f"## {labels['papers']}", ""]
        for paper in briefing.papers:
            authors = ", ".join(paper.get("authors") or [])
            if (paper.get("n_authors") or 0) > len(paper.get("authors") or []):
                authors += " et al." if briefing.lang == "en" else " 等"
            target = paper_link(briefing, paper["n"], link=link, base_url=base_url)
            source = f" <{paper['url']}>" if paper.get("url") else ""
            lines.append(f"{paper['n']}. [{_md_escape(paper['title'])}]({target}): {_md_escape(authors)} "
                         f"({_md_escape(paper.get('label') or paper.get('field') or '')}){source}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def to_json(briefing: Briefing) -> dict:
    analysis = briefing.analysis.to_dict()
    for theme in analysis["themes"]:
        theme.pop("centroid", None)
    return {
        "id": briefing.id,
        "radar_id": briefing.radar_id,
        "period": {"start": briefing.period[0].isoformat(), "end": briefing.period[1].isoformat()},
        "lang": briefing.lang,
        "kind": briefing.kind,
        "model": briefing.model,
        "created_at": as_utc(briefing.created_at).isoformat() if briefing.created_at else None,
        "cached": briefing.cached,
        "superseded": briefing.superseded_at is not None,
        "tokens": {"input": briefing.tokens_in, "output": briefing.tokens_out},
        "cost": briefing.cost,
        "fallback_reason": briefing.fallback_reason,
        "paper_hash": briefing.paper_hash,
        "briefing": briefing.doc.model_dump(mode="json"),
        "papers": [
            {**paper, "card": f"/#paper-{paper['paper_id']}", "page": f"/papers/{paper['paper_id']}"}
            for paper in briefing.papers
        ],
        "analysis": analysis,
    }
