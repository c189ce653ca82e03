"""URLs in untrusted text (abstracts) as links, rendered on the server: the text is escaped, each
http(s) URL becomes `<a href rel="noopener nofollow">` and keeps its text, so a reader can follow
a paper's code or data link, and a page's CSP needs no script for it. Trailing punctuation of the
sentence ("…at https://github.com/x/y.") and an unbalanced closing bracket stay outside the link;
the page's CSS wraps a long URL anywhere, so it never widens a phone's screen."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

# A URL runs to white space, a quote or a brace (TeX's \href{URL}{text}); TeX's escaped \_ \% \# \& \~
# stay inside it (and lose their backslash in the link).
URL = re.compile(r"https?://(?:[^\s<>\"'`{}|\\^]|\\[_%#&~])+", re.IGNORECASE)
TEX_ESCAPE = re.compile(r"\\([_%#&~])")
TRAILING = ".,;:!?'\""
PAIRS = {")": "(", "]": "[", "}": "{"}
MAX_URL = 2000  # longer is not a link anyone typed


def _trim(url: str) -> str:
    """The URL less what belongs to the sentence around it."""
    while url:
        last = url[-1]
        if last in TRAILING:
            url = url[:-1]
        elif last in PAIRS and url.count(last) > url.count(PAIRS[last]):
            url = url[:-1]
        else:
            break
    return url


def linkify(text: str | None) -> Markup:
    """Escaped `text` with its http(s) URLs as links."""
    if not text:
        return Markup("")
    parts: list[str] = []
    pos = 0
    for match in URL.finditer(text):
        url = _trim(match.group(0))
        if len(url) <= len("https://") or len(url) > MAX_URL:
            continue
        parts.append(escape(text[pos:match.start()]))
        href = TEX_ESCAPE.sub(r"\1", url)
        parts.append(Markup('<a href="{0}" rel="noopener nofollow">{1}</a>').format(href, url))
        pos = match.start() + len(url)
    parts.append(escape(text[pos:]))
    return Markup("").join(parts)
