"""The decider: given what is stored and what a source now says, what should the paper row be?
Pure functions over dicts and PaperData, so every rule is testable without a database."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

from ..model import AuthorData, PaperData
from ..names import name_key, name_norm

# Scalar fields that a newer (or equal) version of a record may overwrite.
_SCALARS = (
    "title",
    "abstract",
    "venue",
    "journal_ref",
    "license",
    "comments",
    "url_abs",
    "url_pdf",
)
_IDS = ("doi", "pmid", "pmcid", "openalex_id", "s2_id")
_HASHED = (
    "arxiv_id", "arxiv_version", *_IDS, *_SCALARS, "authors_text", "primary_category",
    "submitted_at", "announced_on", "updated_at", "published_on", "versions",
)


@dataclass(slots=True)
class PaperRow:
    """A paper as the store holds it: the columns, plus its authors and subjects."""

    values: dict
    authors: list[dict]
    categories: list[str]
    id: int | None = None


def _norm_doi(doi: str | None) -> str | None:
    if not doi:
        return None
    doi = doi.strip()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:"):
        if doi.lower().startswith(prefix):
            doi = doi[len(prefix):]
    return doi.lower() or None


def author_rows(authors: list[AuthorData]) -> list[dict]:
    return [
        {
            "position": i,
            "name": a.name,
            "name_norm": name_norm(a.name)[:255],
            "name_key": name_key(a.name)[:255],
            "affiliation": a.affiliation,
            "orcid": a.orcid,
        }
        for i, a in enumerate(authors)
        if a.name
    ]


def _versions(record: PaperData) -> list[dict]:
    return [
        {"version": v.version, "submitted": v.submitted.isoformat() if v.submitted else None, "size": v.size}
        for v in sorted(record.versions, key=lambda v: v.version)
    ]


def _merge_versions(old: list[dict], new: list[dict]) -> list[dict]:
    by_version = {v["version"]: dict(v) for v in old}
    for v in new:
        known = by_version.setdefault(v["version"], dict(v))
        for key, value in v.items():
            if value is not None and known.get(key) is None:
                known[key] = value
    return [by_version[k] for k in sorted(by_version)]


def content_hash(values: dict, authors: list[dict], categories: list[str]) -> str:
    """A fingerprint of what a reader sees; equal fingerprints mean 'unchanged'. repr() of plain
    values (str, int, date, datetime, lists, dicts built in a fixed order) is stable and cheap."""
    payload = (
        [values.get(k) for k in _HASHED],
        [(a["name"], a["affiliation"], a["orcid"]) for a in authors],
        categories,
    )
    return hashlib.blake2b(repr(payload).encode(), digest_size=16).hexdigest()


def new_row(record: PaperData, now: datetime) -> PaperRow:
    authors = author_rows(record.authors)
    values = {
        "arxiv_id": record.arxiv_id,
        "arxiv_version": record.arxiv_version,
        "doi": _norm_doi(record.doi),
        "pmid": record.pmid,
        "pmcid": record.pmcid,
        "openalex_id": record.openalex_id,
        "s2_id": record.s2_id,
        "title": record.title,
        "abstract": record.abstract or "",
        "authors_text": ", ".join(a["name"] for a in authors),
        "primary_category": record.primary_category,
        "venue": record.venue,
        "journal_ref": record.journal_ref,
        "license": record.license,
        "comments": record.comments,
        "url_abs": record.url_abs,
        "url_pdf": record.url_pdf,
        "submitted_at": record.submitted,
        "announced_on": record.announced,
        "updated_at": record.updated,
        "published_on": record.published,
        "versions": _versions(record),
        "provenance": {
            f: record.source
            for f in (*_SCALARS, *_IDS, "authors", "categories")
            if (getattr(record, f) if f not in ("authors", "categories") else getattr(record, f))
        },
        "created_at": now,
        "modified_at": now,
    }
    categories = list(dict.fromkeys(record.categories))
    values["content_hash"] = content_hash(values, authors, categories)
    return PaperRow(values=values, authors=authors, categories=categories)


def _is_newer_or_same(stored_version: int | None, incoming_version: int | None) -> bool:
    if incoming_version is None:
        return stored_version is None
    return stored_version is None or incoming_version >= stored_version


def merge_into(stored: PaperRow, record: PaperData, now: datetime) -> PaperRow:
    """Fold one source record into a stored paper. Newer versions win scalar fields; older ones
    only fill gaps; categories and versions accumulate; first announcement and submission stay."""
    old = stored.values
    values = dict(old)
    provenance = dict(old.get("provenance") or {})
    incoming = new_row(record, now)
    fresh = incoming.values
    newer = _is_newer_or_same(old.get("arxiv_version"), record.arxiv_version)

    for field in _SCALARS:
        value = fresh[field]
        if value and (newer or not old.get(field)):
            if value != old.get(field):
                provenance[field] = record.source
            values[field] = value
    for field in _IDS:
        if fresh[field] and not old.get(field):
            values[field] = fresh[field]
            provenance[field] = record.source

    authors = stored.authors
    if incoming.authors and (newer or not stored.authors):
        if [a["name"] for a in incoming.authors] != [a["name"] for a in stored.authors] or any(
            (a["affiliation"] or a["orcid"]) for a in incoming.authors
        ):
            authors = incoming.authors
            provenance["authors"] = record.source
    values["authors_text"] = ", ".join(a["name"] for a in authors)

    if newer and incoming.categories:
        categories = list(dict.fromkeys(incoming.categories + stored.categories))
    else:
        categories = list(dict.fromkeys(stored.categories + incoming.categories))
    values["primary_category"] = categories[0] if categories else None

    if record.arxiv_version is not None:
        values["arxiv_version"] = max(old.get("arxiv_version") or 0, record.arxiv_version)
    values["submitted_at"] = _earliest(old.get("submitted_at"), fresh["submitted_at"])
    values["announced_on"] = _earliest(old.get("announced_on"), fresh["announced_on"])
    values["published_on"] = _earliest(old.get("published_on"), fresh["published_on"])
    values["updated_at"] = _latest(old.get("updated_at"), fresh["updated_at"])
    values["versions"] = _merge_versions(old.get("versions") or [], fresh["versions"])
    values["provenance"] = provenance
    values["content_hash"] = content_hash(values, authors, categories)
    if values["content_hash"] != old.get("content_hash"):
        values["modified_at"] = now
    return PaperRow(values=values, authors=authors, categories=categories, id=stored.id)


def _earliest(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _latest(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def merge_key(record: PaperData) -> tuple[str, str] | None:
    """The identifier that decides 'same work' within the arXiv family (more keys come with more sources)."""
    if record.arxiv_id:
        return ("arxiv_id", record.arxiv_id)
    doi = _norm_doi(record.doi)
    if doi:
        return ("doi", doi)
    return None
