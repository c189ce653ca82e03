"""A digest as data, and as the two parts of an e-mail: HTML (a Jinja template, its CSS inlined
with css_inline, since mail clients drop <style>) and plain text. zh or en; the strings live here
(the web's gettext catalogs are a front end's, and a worker renders mail without one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import css_inline
from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

LABELS = {
    "en": {
        "digest": "AcademicHub digest", "weekly": "AcademicHub weekly digest", "late": "late",
        "late_note": "This digest is late: the server was not running when it was due.",
        "why": "Why", "card": "Card", "arxiv": "arXiv", "doi": "DOI",
        "like": "Like", "dismiss": "Dismiss", "save": "Save",
        "more": "+{n} more", "more_link": "all papers on the radar", "settings": "Delivery settings",
        "unsubscribe": "Unsubscribe", "footer": "You receive this because a delivery channel of your AcademicHub sends it here.",
        "no_papers": "No new papers for this radar in this period.", "test": "test",
        "author": "followed author {0}", "keyword": "keyword “{0}”", "seed": "similar to seed “{0}”",
        "liked": "like a paper you liked: “{0}”", "category": "category {0}", "venue": "venue {0}",
        "statement_terms": "matches your interest in {0}", "statement": "close in meaning to your interest statement",
    },
    "zh": {
        "digest": "AcademicHub 摘要", "weekly": "AcademicHub 每周摘要", "late": "迟到",
        "late_note": "这份摘要迟到了：到期时服务器没有运行。",
        "why": "推荐理由", "card": "卡片", "arxiv": "arXiv", "doi": "DOI",
        "like": "喜欢", "dismiss": "不感兴趣", "save": "收藏",
        "more": "还有 {n} 篇", "more_link": "在雷达上查看全部论文", "settings": "推送设置",
        "unsubscribe": "退订", "footer": "你收到这封邮件，是因为你在 AcademicHub 设置了推送到此处。",
        "no_papers": "这一时段没有新论文。", "test": "测试",
        "author": "关注的作者 {0}", "keyword": "关键词“{0}”", "seed": "与种子论文“{0}”相似",
        "liked": "与你喜欢的论文相似：“{0}”", "category": "分类 {0}", "venue": "期刊/会议 {0}",
        "statement_terms": "符合你关心的 {0}", "statement": "与你的兴趣描述意思相近",
    },
}


@dataclass(slots=True)
class DigestItem:
    paper_id: int
    title: str
    authors: str
    reasons: list[str]  # the "why", already worded in the digest's language
    card_url: str
    arxiv_url: str | None = None
    doi_url: str | None = None
    actions: dict[str, str] = field(default_factory=dict)  # like | dismiss | save -> signed confirm URL


@dataclass(slots=True)
class DigestSection:
    radar_name: str
    radar_url: str
    items: list[DigestItem]
    headline: str | None = None
    briefing_markdown: str | None = None


@dataclass(slots=True)
class Digest:
    lang: str  # zh | en
    period: str  # 2026-12-06 or 2026-W49
    weekly: bool
    late: bool
    sections: list[DigestSection]
    base_url: str
    settings_url: str
    unsubscribe_url: str | None = None
    test: bool = False

    @property
    def labels(self) -> dict[str, str]:
        return LABELS[self.lang]

    @property
    def item_count(self) -> int:
        return sum(len(s.items) for s in self.sections)


def reason_text(kind: str, text: str, lang: str) -> str:
    """A ranking reason in words, as the radar page's "why" line says it."""
    labels = LABELS[lang]
    if kind == "seed" or kind == "liked":
        short = text if len(text) <= 90 else text[:89] + "…"
        return labels[kind].format(short)
    if kind == "statement":
        if not text:
            return labels["statement"]
        terms = ("”、“" if lang == "zh" else "”, “").join(text.split(", "))
        return labels["statement_terms"].format(f"“{terms}”")
    if kind in ("author", "keyword", "category", "venue"):
        return labels[kind].format(text)
    return text


def subject(digest: Digest) -> str:
    labels = digest.labels
    names = ", ".join(s.radar_name for s in digest.sections) or labels["digest"]
    kind = labels["weekly"] if digest.weekly else labels["digest"]
    head = f"[{labels['late']}] " if digest.late else ""
    if digest.test:
        head = f"[{labels['test']}] " + head
    return f"{head}{kind} · {names} · {digest.period}"


def render_text(digest: Digest, *, max_items: int | None = None) -> str:
    """The plain-text part (and the text of ntfy and plain chat messages): `max_items` cuts the
    papers, whole, and says how many more there are."""
    labels = digest.labels
    lines = [subject(digest), ""]
    if digest.late:
        lines += [labels["late_note"], ""]
    shown = 0
    for section in digest.sections:
        lines += [f"== {section.radar_name} ==", section.radar_url, ""]
        if section.briefing_markdown and max_items is None:
            lines += [section.briefing_markdown.strip(), ""]
        elif section.headline:
            lines += [section.headline, ""]
        if not section.items:
            lines += [labels["no_papers"], ""]
        for item in section.items:
            if max_items is not None and shown >= max_items:
                break
            shown += 1
            lines.append(f"{shown}. {item.title}")
            if item.authors:
                lines.append(f"   {item.authors}")
            if item.reasons:
                lines.append(f"   {labels['why']}: {' · '.join(item.reasons)}")
            lines.append(f"   {labels['card']}: {item.card_url}")
            if item.arxiv_url:
                lines.append(f"   {labels['arxiv']}: {item.arxiv_url}")
            if item.doi_url:
                lines.append(f"   {labels['doi']}: {item.doi_url}")
            for action, url in item.actions.items():
                lines.append(f"   {labels[action]}: {url}")
            lines.append("")
    hidden = digest.item_count - shown
    if hidden > 0:
        lines += [labels["more"].format(n=hidden) + f": {digest.sections[0].radar_url if digest.sections else digest.base_url}", ""]
    lines += ["--", labels["footer"], f"{labels['settings']}: {digest.settings_url}"]
    if digest.unsubscribe_url:
        lines.append(f"{labels['unsubscribe']}: {digest.unsubscribe_url}")
    return "\n".join(lines).rstrip() + "\n"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=PackageLoader("academichub.delivery", "templates"),
                       autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    # raw HTML in a briefing (it quotes abstracts) is shown as text, never passed through
    return MarkdownIt("commonmark", {"html": False, "linkify": False})


def markdown_html(text: str) -> Markup:
    return Markup(_markdown().render(text))


def render_html(digest: Digest) -> str:
    """The HTML part: the template, then every <style> rule inlined onto the elements."""
    html = _environment().get_template("digest.html").render(digest=digest, labels=digest.labels, subject=subject(digest),
                                                             markdown=markdown_html)
    return css_inline.inline(html)


__all__ = ["Digest", "DigestItem", "DigestSection", "LABELS", "markdown_html", "reason_text", "render_html",
           "render_text", "subject"]
