"""Delivery: a digest (a radar's briefing and its ranked papers with their "why") rendered for
e-mail (HTML with inlined CSS plus plain text) and for chat webhooks, and sent. Layer 4, beside
rank/ and brief/: it knows nothing of jobs or the web; app/delivery.py gathers the digest's
content, decides what is due and keeps the exactly-once record."""

from .digest import Digest, DigestItem, DigestSection, render_html, render_text, subject

__all__ = ["Digest", "DigestItem", "DigestSection", "render_html", "render_text", "subject"]
