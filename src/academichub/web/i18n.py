"""UI languages: Simplified Chinese and English. The .po catalogs in locale/ are compiled in memory
at startup (no .mo files to forget to build); the language of a request comes from `?lang=`, then
the `lang` cookie, then Accept-Language, then settings.default_language."""

from __future__ import annotations

import io
from datetime import date, datetime, timezone
from pathlib import Path

from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from markupsafe import Markup

from .mathtext import has_cjk

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
# UI language code -> catalog directory / Babel locale
LANGUAGES = {"zh": "zh_CN", "en": "en"}
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}
HTML_LANG = {"zh": "zh-CN", "en": "en"}
FALLBACK = "zh"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600


def catalog_path(lang: str) -> Path:
    return LOCALE_DIR / LANGUAGES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(lang: str):
    with open(catalog_path(lang), "rb") as handle:
        return read_po(handle, locale=LANGUAGES[lang], domain=DOMAIN)


def load_translations(lang: str) -> Translations:
    """One catalog, compiled to .mo in memory."""
    buffer = io.BytesIO()
    write_mo(buffer, read_catalog(lang))
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def load_all() -> dict[str, Translations]:
    return {lang: load_translations(lang) for lang in LANGUAGES}


# The tags normalize_language() takes, for a published schema (ECMAScript regex: no inline flags).
LANGUAGE_PATTERN = "^ *([zZ][hH]|[eE][nN])([-_][A-Za-z0-9_-]*)? *$"


def normalize_language(tag: str | None) -> str | None:
    """'zh', 'zh-CN', 'zh_Hans', 'ZH' -> 'zh'; 'en-US' -> 'en'; anything else -> None."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else None


def parse_accept_language(header: str | None) -> list[str]:
    """Supported languages in the header's order of preference (q=0 means 'not this one')."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        lang = normalize_language(tag)
        if lang and quality > 0:
            ranked.append((-quality, index, lang))
    return list(dict.fromkeys(lang for _, _, lang in sorted(ranked)))


def negotiate(*, query: str | None, cookie: str | None, accept_language: str | None, default: str | None) -> str:
    for choice in (normalize_language(query), normalize_language(cookie)):
        if choice:
            return choice
    preferred = parse_accept_language(accept_language)
    if preferred:
        return preferred[0]
    return normalize_language(default) or FALLBACK


def format_day(value: date | None, lang: str) -> str:
    """'2024年11月28日' / 'Nov 28, 2024'."""
    if value is None:
        return ""
    return format_date(value, format="medium", locale=LANGUAGES.get(lang, LANGUAGES[FALLBACK]))


def format_moment(value: datetime | None) -> str:
    """'2024-11-28 18:00 UTC' in every language: a stored moment (naive means UTC) said plainly."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def text_lang_attribute(text: str | None, page_lang: str) -> Markup:
    """` lang="en"` for upstream text that is not in the page's language (an English title on a
    Chinese page, a Chinese one on an English page), so screen readers and hyphenation read it
    right; empty when it matches. The Jinja filter `text_lang`: `<p{{ item.abstract | text_lang }}>`."""
    if not text:
        return Markup("")
    text_language = "zh" if has_cjk(text) else "en"
    if text_language == page_lang:
        return Markup("")
    return Markup(f' lang="{HTML_LANG[text_language]}"')
