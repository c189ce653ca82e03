"""The extractive briefing: no LLM, works offline, built from the analysis alone.

Theme titles are the themes' key phrases (in a Chinese briefing, in Chinese where AcademicHub's
glossary or taxonomy names them: brief/theme_titles.py); each theme opens with one sentence of
connective text (how many papers, from which fields, on which phrases) and then QUOTES one sentence from each of
its most central papers: the abstract sentence with the most of the theme's key phrases, a
contribution statement ("we propose…", "here we show…") winning ties, first sentence last.
Cross-domain links are listed with their shared phrases and similarity; picks are the papers
nearest each theme's centre, each with another quoted sentence than its theme shows; changes come from the comparison with
the previous period. Connective text and labels exist in English and Chinese; paper titles, key
phrases and quotes stay as the papers wrote them. Every sentence cites its papers."""

from __future__ import annotations

import re

from .analysis import Analysis, Change, Theme
from .inputs import BriefPaper
from .schema import BriefingDoc, DocChange, DocLink, DocPick, DocSentence, DocTheme
from .text import plain, split_sentences
from .theme_titles import theme_title as localised_title

QUOTES_PER_THEME = 3
MAX_QUOTE = 420
PICKS = 5

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "extractive": "Extractive briefing (no LLM): quoted sentences are taken verbatim from the abstracts.",
        "llm": "LLM briefing: every claim cites its paper; read the paper before relying on a claim.",
        "fallback": "The LLM briefing failed, so this is the extractive briefing.",
        "no_previous": "No previous period to compare with.",
        "no_change": "No theme changed much against the previous period.",
        "no_papers": "No papers in this period.",
        "themes": "Themes",
        "links": "Cross-domain links",
        "picks": "Read first",
        "changes": "What changed",
        "papers": "Papers",
    },
    "zh": {
        "extractive": "摘录式简报（未使用大模型）：引号内的句子均逐字摘自论文摘要。",
        "llm": "大模型简报：每条陈述都标注了出处论文；引用前请阅读原文。",
        "fallback": "大模型简报生成失败，以下为摘录式简报。",
        "no_previous": "没有可比较的上一期。",
        "no_change": "与上一期相比，各主题变化不大。",
        "no_papers": "本期没有论文。",
        "themes": "主题",
        "links": "跨领域关联",
        "picks": "优先阅读",
        "changes": "变化",
        "papers": "论文",
    },
}

_CUE = re.compile(
    r"(?i)\b(?:we|this (?:paper|work|study|letter|article))\s+(?:\w+\s+){0,2}?"
    r"(?:propose|present|introduce|develop|show|find|demonstrate|report|derive|obtain|establish|prove|design|build|study|investigate|reveal)"
    r"|\bhere,?\s+we\b|\bour (?:results|findings|analysis|method|approach)\b"
)


def _join(items: list[str], lang: str) -> str:
    if lang == "zh":
        return "、".join(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _quoted(items: list[str], lang: str) -> list[str]:
    return [f"“{x}”" for x in items]


def _fields_text(fields: dict[str, int], lang: str) -> str:
    parts = [f"{name} ({count})" if lang == "en" else f"{name}（{count}）" for name, count in fields.items()]
    return _join(parts, lang)


def theme_title(theme: Theme, lang: str = "en") -> str:
    """The theme's first three key phrases, in Chinese where AcademicHub's glossary or taxonomy
    names them in a Chinese briefing (brief/theme_titles.py)."""
    return localised_title(theme.phrases, lang, theme.label)


def representative_sentence(paper: BriefPaper, phrases: list[str], exclude: set[str] | None = None) -> str | None:
    """The abstract sentence to quote for this paper (verbatim; a long one cut at a word with "…"),
    other than those in `exclude` when the abstract has another."""
    sentences = split_sentences(paper.abstract)
    if exclude:
        sentences = [s for s in sentences if _cut(s) not in exclude] or sentences
    if not sentences:
        return None
    patterns = [re.compile(r"(?<![\w-])" + r"[\s-]+".join(re.escape(w) for w in ph.lower().split()) + r"(?![\w-])")
                for ph in phrases]
    best: tuple[float, int] | None = None
    for index, sentence in enumerate(sentences):
        lowered = plain(sentence).lower()
        hits = sum(1 for p in patterns if p.search(lowered))
        score = 2.0 * hits + (1.5 if _CUE.search(sentence) else 0.0)
        if len(sentence) < 50:
            score -= 2.0
        elif len(sentence) > 450:
            score -= 1.0
        if index == 0 and len(sentences) > 2:
            score -= 0.5  # the first sentence is often background
        if best is None or score > best[0]:
            best = (score, index)
    return _cut(sentences[best[1]])


def _cut(sentence: str) -> str:
    if len(sentence) > MAX_QUOTE:
        return sentence[: MAX_QUOTE - 1].rsplit(" ", 1)[0] + "…"
    return sentence


def analysis_headline(analysis: Analysis, lang: str) -> DocSentence:
    n, k, links = analysis.n_papers, len(analysis.themes), len(analysis.links)
    if not n:
        return DocSentence(text=LABELS[lang]["no_papers"])
    titles = [theme_title(t, lang) for t in analysis.themes[:3]]
    if lang == "zh":
        text = f"{n} 篇论文，{k} 个主题：{'；'.join(titles)}"
        if links:
            text += f"；{links} 条跨领域关联"
        return DocSentence(text=text + "。")
    text = f"{n} papers in {k} theme{'s' if k != 1 else ''}: {'; '.join(titles)}"
    if links:
        text += f"; {links} cross-domain link{'s' if links != 1 else ''}"
    return DocSentence(text=text + ".")


def _theme_intro(theme: Theme, lang: str) -> DocSentence:
    count = len(theme.members)
    phrases = _quoted(theme.phrases[:5], lang)
    fields = _fields_text(theme.fields, lang)
    if lang == "zh":
        text = f"{count} 篇论文，来自 {fields}，关键词：{'、'.join(phrases)}。"
    else:
        text = f"{count} paper{'s' if count != 1 else ''} from {fields} on {_join(phrases, lang)}."
    return DocSentence(text=text, cite=list(theme.members))


def _link_sentence(link, lang: str) -> DocSentence:
    shared = _quoted(link.shared[:3], lang)
    if lang == "zh":
        if shared:
            text = (f"两篇论文都涉及{'、'.join(shared)}（余弦相似度 {link.similarity:.2f}），"
                    f"{link.field_a} 一方的方法、数据或问题可能对 {link.field_b} 一方有用，反之亦然。")
        else:
            text = f"两篇论文的摘要在语义上相近（余弦相似度 {link.similarity:.2f}），尽管分属 {link.field_a} 和 {link.field_b}。"
    else:
        if shared:
            text = (f"Both work with {_join(shared, lang)} (cosine similarity {link.similarity:.2f}), so a method, "
                    f"dataset or result from {link.field_a} may carry over to {link.field_b}, or the other way round.")
        else:
            text = (f"The two abstracts are close in meaning (cosine similarity {link.similarity:.2f}) although one is "
                    f"{link.field_a} and the other {link.field_b}.")
    return DocSentence(text=text, cite=[link.a, link.b])


def _change_sentence(change: Change, analysis: Analysis, lang: str) -> DocSentence | None:
    title = localised_title(change.phrases, lang, change.label)
    cite = analysis.themes[change.theme].members[:3] if change.theme is not None else []
    before, after = f"{change.before_share:.0%}", f"{change.after_share:.0%}"
    zh = {
        "new": f"新主题：{title}（{change.after} 篇）。",
        "grew": f"增长：{title}，占比从 {before} 升至 {after}（{change.before} → {change.after} 篇）。",
        "shrank": f"减少：{title}，占比从 {before} 降至 {after}（{change.before} → {change.after} 篇）。",
        "faded": f"消退：{title}（上一期 {change.before} 篇）。",
    }
    en = {
        "new": f"New theme: {title} ({change.after} paper{'s' if change.after != 1 else ''}).",
        "grew": f"Grew: {title}, from {before} to {after} of the papers ({change.before} → {change.after}).",
        "shrank": f"Shrank: {title}, from {before} to {after} of the papers ({change.before} → {change.after}).",
        "faded": f"Faded: {title} ({change.before} paper{'s' if change.before != 1 else ''} in the previous period).",
    }
    table = zh if lang == "zh" else en
    if change.kind not in table:
        return None
    return DocSentence(text=table[change.kind], cite=cite)


def extractive_briefing(papers: list[BriefPaper], analysis: Analysis, lang: str, *, notes: list[str] | None = None) -> BriefingDoc:
    by_n = {p.n: p for p in papers}
    labels = LABELS[lang]
    quotes: dict[int, str | None] = {}

    def quote_for(n: int, phrases: list[str]) -> str | None:
        if n not in quotes:
            quotes[n] = representative_sentence(by_n[n], phrases) if n in by_n else None
        return quotes[n]

    themes: list[DocTheme] = []
    for theme in analysis.themes:
        sentences = [_theme_intro(theme, lang)]
        for n in theme.members[:QUOTES_PER_THEME]:
            quote = quote_for(n, theme.phrases)
            if quote:
                sentences.append(DocSentence(text=quote, cite=[n], quote=True, title=by_n[n].title))
        themes.append(DocTheme(title=theme_title(theme, lang), phrases=theme.phrases, papers=list(theme.members),
                               fields=theme.fields, sentences=sentences))

    links = [
        DocLink(a=link.a, b=link.b, field_a=link.field_a, field_b=link.field_b, why=_link_sentence(link, lang),
                similarity=link.similarity, shared=link.shared)
        for link in analysis.links
    ]

    picks: list[DocPick] = []
    for n in analysis.picks[:PICKS]:
        theme = analysis.themes[analysis.theme_of(n)] if analysis.theme_of(n) is not None else None
        quoted = {quotes[n]} if quotes.get(n) else set()
        quote = representative_sentence(by_n[n], theme.phrases if theme else [], quoted) if n in by_n else None
        title = by_n[n].title if n in by_n else analysis.papers[n - 1]["title"]
        if quote:
            line = DocSentence(text=quote, cite=[n], quote=True, title=title)
        else:
            line = DocSentence(text=title, cite=[n])
        picks.append(DocPick(n=n, line=line))

    changes: list[DocChange] = []
    all_notes = list(notes or [])
    if analysis.has_previous:
        for change in analysis.changes:
            sentence = _change_sentence(change, analysis, lang)
            if sentence is not None:
                changes.append(DocChange(kind=change.kind, text=sentence))
        if not changes and analysis.n_papers:
            all_notes.append(labels["no_change"])
    elif analysis.n_papers:
        all_notes.append(labels["no_previous"])

    return BriefingDoc(kind="extractive", lang=lang, label=labels["extractive"], headline=analysis_headline(analysis, lang),
                       themes=themes, links=links, picks=picks, changes=changes, notes=all_notes)
