"""UI languages: Simplified Chinese and English. The .po catalogs in locale/ are compiled in memory
at startup (no .mo files to forget to build); the language of a request comes from `?lang=`, then
the `lang` cookie, then Accept-Language, then settings.default_language."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from markupsafe import Markup

from ..errors import AcademicHubError
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


# -- messages made in Python ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Said:
    """A message a page shows that Python made: its id (the English str.format template, looked up
    in the catalogs) and its parameters. Templates show it with the `say` filter."""

    template: str
    params: dict = field(default_factory=dict)


def said(template: str, /, **params) -> Said:
    """Mark a message for the catalogs (the catalog test extracts `said("...")` and
    `.translatable("...")` calls) and carry its parameters to the page."""
    return Said(template, params)


def say(value, translations: Translations) -> str:
    """A Said, an AcademicHubError made with `translatable`, or plain text, in the page's language.
    An untranslated or broken template falls back to the English text."""
    if value is None:
        return ""
    if isinstance(value, Said):
        template, params = value.template, value.params
    elif isinstance(value, AcademicHubError) and value.template:
        template, params = value.template, value.params
    else:
        return str(value)
    try:
        return translations.gettext(template).format(**params)
    except (KeyError, IndexError, ValueError):
        return template.format(**params)


# Pydantic's error types (and our own `invalid()` messages) as catalog messages for HTML pages; the
# JSON API keeps Pydantic's English `msg`. The parameters come from the error's `ctx`.
VALIDATION_MESSAGES = {
    "missing": "this value is required",
    "string_too_long": "at most {max_length} characters",
    "string_too_short": "at least {min_length} characters",
    "too_long": "at most {max_length} values",
    "too_short": "at least {min_length} values",
    "int_parsing": "not a whole number",
    "int_from_float": "not a whole number",
    "int_type": "not a whole number",
    "float_parsing": "not a number",
    "bool_parsing": "not true or false",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "string_type": "must be text",
    "list_type": "must be a list",
    "date_parsing": "not a valid calendar date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "not a valid calendar date (YYYY-MM-DD)",
    "string_pattern_mismatch": "not in the expected form",
    "json_invalid": "not valid JSON",
    "literal_error": "not one of the allowed values",
    "enum": "not one of the allowed values",
}


def validation_message(error: dict) -> Said | str:
    """One FastAPI/Pydantic validation error as a message to translate: our own `invalid()` errors
    carry theirs (`said`), Pydantic's by type; an unknown type keeps Pydantic's English text."""
    if isinstance(error.get("said"), Said):
        return error["said"]
    template = VALIDATION_MESSAGES.get(error.get("type", ""))
    if template is None:
        return error.get("msg", "")
    context = error.get("ctx") or {}
    try:
        template.format(**context)
    except (KeyError, IndexError, ValueError):
        return error.get("msg", "")
    return Said(template, {k: v for k, v in context.items() if isinstance(v, (int, float, str))})
