"""Grounding: what an LLM wrote is checked against what it was given, before anyone reads it.

- A citation to a number that is not an input paper is removed and logged; a sentence left
  citing nothing is dropped (only the headline and "what changed" may cite nothing).
- Citation markers written into the text ("[3]", "[3, 5]", "【3】") count as citations and are
  taken out of the text (the renderer puts the citations back, as links).
- A figure quoted in a sentence ("6.22%", "65%", "3.5x", "1,200") must occur, with the same unit,
  in the title or abstract (as sent to the model) of a paper that sentence cites; otherwise the
  sentence is dropped. Figures in "what changed" may also be the analysis' own counts.
- A sentence with a URL, or that talks about instructions or prompts, is dropped: abstracts are
  untrusted text, and a briefing has no reason to carry either.
- A link must join two different input papers of different fields whose vectors are at least
  somewhat close (cosine >= LINK_FLOOR x the analysis' link threshold); a pick must be an input
  paper (once).
- The headline, if dropped, is replaced by the analysis' own headline.
If no theme keeps a sentence, GroundingError: the answer is rejected as a whole."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np

from .analysis import Analysis
from .inputs import BriefPaper
from .schema import BriefingDoc, DocChange, DocLink, DocPick, DocSentence, DocTheme, LLMReply
from .text import INSTRUCTION as _INSTRUCTION, number_supported, numbers_in, plain

log = logging.getLogger(__name__)

_MARKER = re.compile(r"\s*[\[【［]\s*(\d+(?:\s*(?:[,，、;；]|-|–)\s*\d+)*)\s*[\]】］]")
_URL = re.compile(r"(?i)\b(?:https?://|ftp://|www\.)\S+|\b[\w-]+\.(?:com|net|org|io|xyz|ru|cn|ly|me)/\S*")
_ENUMERATION = re.compile(r"(?i)^\s*(?:theme|topic|主题)?\s*\d{1,2}\s*[:.：、)）-]\s*")
_TAGS = re.compile(r"<[^>]{0,200}>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


LINK_FLOOR = 0.75


class GroundingError(ValueError):
    """Nothing of the answer survives grounding."""


@dataclass(slots=True)
class GroundingReport:
    removed_citations: list[tuple[str, int]] = field(default_factory=list)  # (where, number)
    dropped: list[tuple[str, str, str]] = field(default_factory=list)  # (where, reason, text)
    headline_replaced: bool = False

    def notes(self) -> list[str]:
        notes = []
        if self.removed_citations:
            numbers = ", ".join(f"[{n}]" for _, n in self.removed_citations)
            notes.append(f"removed citations of papers not in the input: {numbers}")
        if self.dropped:
            notes.append(f"dropped {len(self.dropped)} ungrounded sentence(s)")
        if self.headline_replaced:
            notes.append("headline replaced by the analysis' own")
        return notes


def split_markers(text: str) -> tuple[str, list[int]]:
    """The text without inline citation markers, and the numbers they named ([2-4] is 2, 3, 4)."""
    found: list[int] = []

    def take(match: re.Match) -> str:
        inner = match.group(1)
        for part in re.split(r"\s*[,，、;；]\s*", inner):
            bounds = re.split(r"\s*[-–]\s*", part)
            if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
                low, high = int(bounds[0]), int(bounds[1])
                if 0 < high - low <= 20:
                    found.extend(range(low, high + 1))
                    continue
            found.extend(int(x) for x in bounds if x.isdigit())
        return ""

    cleaned = _MARKER.sub(take, text)
    return cleaned, found


def clean(text: str) -> str:
    text = _CONTROL.sub(" ", text or "")
    text = _TAGS.sub(" ", text)
    text = " ".join(text.split())
    return re.sub(r"\s+([,.;:!?，。；：！？])", r"\1", text)


class _Grounder:
    def __init__(self, papers: list[BriefPaper], analysis: Analysis, sent: dict[int, str] | None):
        self.papers = {p.n: p for p in papers}
        self.analysis = analysis
        self.valid = set(self.papers)
        sources = sent or {p.n: f"{p.title} {p.abstract}" for p in papers}
        self.figures = {n: numbers_in(plain(text)) | numbers_in(text) for n, text in sources.items()}
        self.report = GroundingReport()

    def citations(self, where: str, numbers: list[int]) -> list[int]:
        kept: list[int] = []
        for n in numbers:
            if n in self.valid:
                if n not in kept:
                    kept.append(n)
            else:
                self.report.removed_citations.append((where, n))
                log.warning("briefing: citation [%s] in %s is not an input paper: removed", n, where)
        return kept

    def drop(self, where: str, reason: str, text: str) -> None:
        self.report.dropped.append((where, reason, text[:120]))
        log.warning("briefing: dropped a sentence in %s (%s): %.120s", where, reason, text)

    def sentence(self, where: str, text: str, cite: list[int], *, allow_uncited: bool = False,
                 extra_figures: set[tuple[str, str]] | None = None) -> DocSentence | None:
        body, inline = split_markers(text or "")
        body = clean(body)
        cite = self.citations(where, [*cite, *inline])
        if not body:
            return None
        if _URL.search(body):
            self.drop(where, "contains a URL", body)
            return None
        if _INSTRUCTION.search(body):
            self.drop(where, "talks about instructions", body)
            return None
        if not cite and not allow_uncited:
            self.drop(where, "cites no input paper", body)
            return None
        available: set[tuple[str, str]] = set(extra_figures or set())
        for n in cite:
            available |= self.figures.get(n, set())
        for figure in sorted(numbers_in(body)):
            if not number_supported(figure, available):
                shown = figure[0] + ("%" if figure[1] == "%" else figure[1])
                self.drop(where, f"quotes {shown}, which no cited abstract contains", body)
                return None
        return DocSentence(text=body, cite=cite)

    def similarity(self, a: int, b: int) -> float | None:
        va, vb = self.papers[a].embedding, self.papers[b].embedding
        if va is None or vb is None:
            return None
        return round(float(np.dot(va, vb) / ((np.linalg.norm(va) * np.linalg.norm(vb)) or 1.0)), 4)


def _change_figures(analysis: Analysis) -> set[tuple[str, str]]:
    figures: set[tuple[str, str]] = set()
    for change in analysis.changes:
        for count in (change.before, change.after):
            figures.add((str(count), ""))
        for share in (change.before_share, change.after_share):
            figures.add((str(round(share * 100)), "%"))
    figures.add((str(analysis.n_papers), ""))
    figures.add((str(len(analysis.themes)), ""))
    return figures


def ground(reply: LLMReply, papers: list[BriefPaper], analysis: Analysis, lang: str, *,
           sent: dict[int, str] | None = None) -> tuple[BriefingDoc, GroundingReport]:
    from .extractive import LABELS, analysis_headline

    g = _Grounder(papers, analysis, sent)
    headline = g.sentence("headline", reply.headline, [], allow_uncited=True)
    if headline is None:
        headline = analysis_headline(analysis, lang)
        g.report.headline_replaced = True

    themes: list[DocTheme] = []
    for index, theme in enumerate(reply.themes, start=1):
        where = f"theme {index}"
        sentences = [s for s in (g.sentence(where, x.text, x.cite) for x in theme.sentences) if s is not None]
        if not sentences:
            continue
        cited = list(dict.fromkeys(n for s in sentences for n in s.cite))
        members = list(dict.fromkeys([*g.citations(f"{where} papers", theme.papers), *cited]))
        title = _ENUMERATION.sub("", clean(split_markers(theme.title)[0]))
        figures_ok = all(number_supported(f, set().union(*(g.figures.get(n, set()) for n in members)))
                         for f in numbers_in(title))
        if not title or _URL.search(title) or _INSTRUCTION.search(title) or not figures_ok:
            g.drop(f"{where} title", "title replaced by the theme's key phrases", title)
            title = _closest_label(analysis, members, lang) or (sentences[0].text[:60])
        fields: dict[str, int] = {}
        for n in members:
            fields[g.papers[n].field] = fields.get(g.papers[n].field, 0) + 1
        themes.append(DocTheme(title=title, papers=members, fields=fields, sentences=sentences))
    if not themes:
        reasons = "; ".join(sorted({reason for _, reason, _ in g.report.dropped})) or "no sentences"
        raise GroundingError(f"no theme kept a grounded sentence ({reasons})")

    links: list[DocLink] = []
    seen_pairs: set[tuple[int, int]] = set()
    for index, link in enumerate(reply.links, start=1):
        where = f"link {index}"
        a, b = link.a, link.b
        if a not in g.valid or b not in g.valid or a == b:
            for n in (a, b):
                if n not in g.valid:
                    g.citations(where, [n])
            g.drop(where, "does not join two input papers", link.why)
            continue
        if g.papers[a].field == g.papers[b].field:
            g.drop(where, "joins two papers of the same field", link.why)
            continue
        pair = (min(a, b), max(a, b))
        if pair in seen_pairs:
            continue
        similarity = g.similarity(*pair)
        if similarity is not None and similarity < LINK_FLOOR * analysis.link_threshold:
            g.drop(where, f"the two papers are not similar (cosine {similarity:.2f})", link.why)
            continue
        why = g.sentence(where, link.why, [a, b, *link.cite])
        if why is None:
            continue
        seen_pairs.add(pair)
        known = next((x for x in analysis.links if (x.a, x.b) == pair), None)
        links.append(DocLink(a=pair[0], b=pair[1], field_a=g.papers[pair[0]].field, field_b=g.papers[pair[1]].field,
                             why=why, similarity=known.similarity if known else similarity,
                             shared=known.shared if known else []))

    picks: list[DocPick] = []
    for index, pick in enumerate(reply.picks, start=1):
        where = f"pick {index}"
        if pick.n not in g.valid:
            g.citations(where, [pick.n])
            continue
        if any(p.n == pick.n for p in picks):
            continue
        line = g.sentence(where, pick.line, [pick.n])
        if line is not None:
            picks.append(DocPick(n=pick.n, line=line))

    changes: list[DocChange] = []
    if analysis.has_previous:
        figures = _change_figures(analysis)
        for index, change in enumerate(reply.changes, start=1):
            text = g.sentence(f"change {index}", change.text, change.cite, allow_uncited=True, extra_figures=figures)
            if text is not None:
                changes.append(DocChange(kind="note", text=text))
    elif reply.changes:
        for change in reply.changes:
            g.drop("changes", "there is no previous period to compare with", change.text)

    doc = BriefingDoc(kind="llm", lang=lang, label=LABELS[lang]["llm"], headline=headline, themes=themes,
                      links=links, picks=picks, changes=changes)
    assert set(doc.citations()) <= g.valid
    return doc, g.report


def _closest_label(analysis: Analysis, members: list[int], lang: str = "en") -> str | None:
    """The title of the analysed theme sharing most papers: its key phrases in `lang`."""
    from .theme_titles import theme_title

    best, label = 0, None
    for theme in analysis.themes:
        overlap = len(set(theme.members) & set(members))
        if overlap > best:
            best, label = overlap, theme_title(theme.phrases, lang, theme.label)
    return label
