"""The decider: what is one work, and what should its row say? Pure functions over dicts and
PaperData, so every rule is testable without a database.

- Same work: records that share an identifier (arXiv id — arXiv's DOIs 10.48550/arXiv.* count as
  the arXiv id —, DOI, PMID, PMCID, OpenAlex, Semantic Scholar) or that one of them links to as its
  preprint / published version; failing that, a conservative fuzzy match (same normalized title,
  same first-author family name, years at most one apart) that never joins two records carrying
  different identifiers of the same kind.
- Best value per field: each field remembers the source that set it (provenance). Within one
  source family the newer version wins (arXiv v4 over v3); across families a per-field ranking
  decides (the journal's title and venue over the preprint's, PubMed's structured abstract over
  Crossref's, ...); an empty field always takes a value. Families and their per-field ranks are
  declared by the source kinds (sources/kinds.py `MergeFamily`)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime

from ..identifiers import norm_doi, norm_identifier
from ..model import AuthorData, PaperData
from ..names import fold, name_key, name_norm, split_name, tex_to_unicode
from ..sources.kinds import family_of

SCALARS = ("title", "abstract", "venue", "venue_abbrev", "journal_ref", "license", "comments", "url_abs", "url_pdf",
           "publisher", "work_type", "issn", "server", "tldr", "published_on")
_IDS = ("doi", "pmid", "pmcid", "openalex_id", "s2_id")
_HASHED = (
    "arxiv_id", "arxiv_version", *_IDS, *SCALARS, "authors_text", "primary_category",
    "submitted_at", "announced_on", "updated_at", "versions", "citation_count",
)
_PROVENANCE_FIELDS = (*SCALARS, *_IDS)
PREPRINT_DOI_PREFIXES = ("10.48550/", "10.1101/")  # arXiv, bioRxiv/medRxiv


def family(source: str) -> str:
    """The merge family of a record source ("arxiv-oai" -> "arxiv"), declared by its kind; a source
    no kind names is a family of its own."""
    found = family_of(source)
    return found.name if found is not None else source


def rank(field_name: str, source: str) -> int:
    """How far this source's value of a field is trusted against other families' (higher wins)."""
    found = family_of(source)
    return found.rank(field_name) if found is not None else 0


@dataclass(slots=True)
class PaperRow:
    """A paper as the store holds it: the columns, plus authors, subjects, identifiers, relations."""

    values: dict
    authors: list[dict]
    categories: list[str]  # arXiv categories, primary first
    subjects: list[tuple[str, str]] = field(default_factory=list)  # other taxonomies and keywords
    identifiers: dict[tuple[str, str], str] = field(default_factory=dict)  # (scheme, value) -> source
    relations: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (relation, scheme, value) -> source
    id: int | None = None
    # (dialect, filled columns, driver values) for a fresh insert, computed by the parsing worker
    # (`store.papers.driver_row`), on PostgreSQL maybe with the search vector as a fourth item
    # (pipeline's `_search_vectors_ahead`); any merge makes a new row without it
    driver: tuple | None = None

    def __reduce__(self):
        # Rows cross a process boundary in bulk imports (pipeline's worker): the column names go
        # once per batch (pickle memoizes the shared tuple), each row as a tuple of values.
        keys = tuple(self.values)
        keys = _KEY_SETS.setdefault(keys, keys) if len(_KEY_SETS) < 64 else keys
        return (_row_from_state, (keys, tuple(self.values.values()), self.authors, self.categories,
                                  self.subjects, self.identifiers, self.relations, self.id, self.driver))


_KEY_SETS: dict[tuple, tuple] = {}


def _row_from_state(keys, values, authors, categories, subjects, identifiers, relations, row_id, driver=None) -> PaperRow:
    return PaperRow(dict(zip(keys, values)), authors, categories, subjects, identifiers, relations, row_id, driver)


# ----------------------------------------------------------------------------- identifiers


def record_identifiers(record: PaperData) -> list[tuple[str, str]]:
    found = [
        norm_identifier(scheme, value)
        for scheme, value in (
            ("arxiv", record.arxiv_id), ("doi", record.doi), ("pmid", record.pmid), ("pmcid", record.pmcid),
            ("openalex", record.openalex_id), ("s2", record.s2_id),
        )
        if value
    ]
    keys = list(dict.fromkeys(k for k in found if k))
    if not keys and record.url_abs:  # a publisher feed entry without DOI: its link is all it has
        url = norm_identifier("url", record.url_abs)
        keys = [url] if url else []
    if not keys and isinstance(record.raw, dict) and record.raw.get("library_key"):
        keys = [("library", str(record.raw["library_key"])[:255])]  # a reference-library entry with no identifier
    return keys


def relation_keys(record: PaperData) -> list[tuple[str, str, str]]:
    keys = []
    for rel in record.relations:
        ident = norm_identifier(rel.scheme, rel.value)
        if ident:
            keys.append((rel.relation, *ident))
    return keys


# ----------------------------------------------------------------------------- rows


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


_NON_ALNUM = re.compile(r"[^a-z0-9]+")


_WORK_TYPES = {"article": "journal-article", "journal-article": "journal-article", "review-article": "review"}


def norm_work_type(value: str | None) -> str | None:
    """One vocabulary across sources (Crossref's): "Journal Article", "article" -> "journal-article"."""
    if not value:
        return None
    key = "-".join(value.lower().replace("_", " ").split())
    return _WORK_TYPES.get(key, key)


def title_key(title: str) -> str:
    """ASCII-folded letters and digits only: cheap enough for bulk imports (C-level NFKD + encode)."""
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return _NON_ALNUM.sub("", folded)[:255]


def first_author_key(authors: list[dict]) -> str | None:
    if not authors:
        return None
    _given, family_name = split_name(tex_to_unicode(authors[0]["name"]))
    return fold(family_name).replace(" ", "")[:255] or None


def _year(values: dict) -> int | None:
    for name in ("published_on", "submitted_at", "announced_on"):
        value = values.get(name)
        if value is not None:
            return value.year
    return None


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


def content_hash(row: PaperRow) -> str:
    """A fingerprint of what a reader sees; equal fingerprints mean 'unchanged'. Strings go in as
    they are (repr() of a long abstract costs more than the hash), None as NUL, other plain values
    as repr(); computed for every record of a bulk import, so every microsecond counts."""
    values = row.values
    parts = [v if type(v) is str else "\x00" if v is None else repr(v) for v in map(values.get, _HASHED)]
    parts.append(repr((
        [(a["name"], a["affiliation"], a["orcid"]) for a in row.authors],
        row.categories,
        sorted(row.subjects),
        sorted(row.identifiers),
        sorted(row.relations),
    )))
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()  # a fingerprint, not a security measure


def _record_version(record: PaperData) -> int | None:
    if record.arxiv_version is not None:
        return record.arxiv_version
    if record.versions:
        return max(v.version for v in record.versions)
    return None


def new_row(record: PaperData, now: datetime) -> PaperRow:
    authors = author_rows(record.authors)
    source = record.source
    doi = norm_doi(record.doi)
    if doi and doi.startswith("10.48550/arxiv."):
        doi = None  # the arXiv DOI is the arXiv id, kept in identifiers
    values = {
        "arxiv_id": record.arxiv_id,
        "arxiv_version": record.arxiv_version,
        "doi": doi,
        "pmid": record.pmid,
        "pmcid": (norm_identifier("pmcid", record.pmcid) or (None, None))[1] if record.pmcid else None,
        "openalex_id": (norm_identifier("openalex", record.openalex_id) or (None, None))[1] if record.openalex_id else None,
        "s2_id": record.s2_id,
        "title": record.title,
        "abstract": record.abstract or "",
        "authors_text": ", ".join(a["name"] for a in authors),
        "primary_category": record.primary_category,
        "venue": record.venue,
        "venue_abbrev": record.raw.get("iso_abbreviation") if record.raw else None,
        "journal_ref": record.journal_ref,
        "license": record.license,
        "comments": record.comments,
        "url_abs": record.url_abs,
        "url_pdf": record.url_pdf,
        "publisher": record.publisher,
        "work_type": norm_work_type(record.work_type),
        "issn": record.issns[0] if record.issns else None,
        "server": record.server,
        "tldr": record.tldr,
        "citation_count": record.citation_count,
        "submitted_at": record.submitted,
        "announced_on": record.announced,
        "updated_at": record.updated,
        "published_on": record.published,
        "versions": _versions(record),
        "origin": source,
        "created_at": now,
        "modified_at": now,
    }
    provenance = {name: source for name in _PROVENANCE_FIELDS if values[name]}
    if authors:
        provenance["authors"] = source
    version = _record_version(record)
    if version is not None:
        provenance[f"_v:{family(source)}"] = version
    values["provenance"] = provenance
    values["title_key"] = title_key(record.title or "")
    values["first_author_key"] = first_author_key(authors)
    values["pub_year"] = _year(values)
    subjects = list(dict.fromkeys([*record.subjects, *(("keyword", k) for k in record.keywords)]))
    row = PaperRow(
        values=values,
        authors=authors,
        categories=list(dict.fromkeys(record.categories)),
        subjects=[(scheme[:16], code[:255]) for scheme, code in subjects if code],
        identifiers={key: source for key in record_identifiers(record)},
        relations={key: source for key in relation_keys(record)},
    )
    values["content_hash"] = content_hash(row)
    return row


def _takes(name: str, old: PaperRow, new: PaperRow) -> bool:
    """Does `new`'s value of field `name` replace `old`'s?"""
    old_value = old.values.get(name) if name != "authors" else old.authors
    if not old_value:
        return True
    old_source = old.values["provenance"].get(name)
    new_source = new.values["provenance"].get(name)
    if new_source is None:
        return False
    if old_source is None:
        return True
    old_family, new_family = family(old_source), family(new_source)
    if old_family == new_family:
        old_version = old.values["provenance"].get(f"_v:{old_family}")
        new_version = new.values["provenance"].get(f"_v:{new_family}")
        if new_version is None:
            return old_version is None
        return old_version is None or new_version >= old_version
    return rank(name, new_source) > rank(name, old_source)


def merge_rows(old: PaperRow, new: PaperRow, now: datetime) -> PaperRow:
    """Fold `new` (a fresh record, or another stored paper of the same work) into `old`."""
    values = dict(old.values)
    provenance = dict(old.values.get("provenance") or {})
    fresh = new.values
    fresh_provenance = fresh.get("provenance") or {}

    for name in SCALARS:
        if fresh.get(name) and fresh[name] != values.get(name) and _takes(name, old, new):
            values[name] = fresh[name]
            provenance[name] = fresh_provenance.get(name, fresh.get("origin"))

    # Identifier columns: fill gaps; a journal DOI replaces a preprint DOI as the one shown.
    for name in ("pmid", "pmcid", "openalex_id", "s2_id", "arxiv_id"):
        if fresh.get(name) and not values.get(name):
            values[name] = fresh[name]
            provenance[name] = fresh_provenance.get(name, fresh.get("origin"))
    if fresh.get("doi") and fresh["doi"] != values.get("doi"):
        if not values.get("doi") or (
            values["doi"].startswith(PREPRINT_DOI_PREFIXES) and not fresh["doi"].startswith(PREPRINT_DOI_PREFIXES)
        ):
            values["doi"] = fresh["doi"]
            provenance["doi"] = fresh_provenance.get("doi", fresh.get("origin"))

    authors = old.authors
    if new.authors and _takes("authors", old, new):
        if [(a["name"], a["affiliation"], a["orcid"]) for a in new.authors] != [
            (a["name"], a["affiliation"], a["orcid"]) for a in old.authors
        ]:
            authors = new.authors
            provenance["authors"] = fresh_provenance.get("authors", fresh.get("origin"))
    values["authors_text"] = ", ".join(a["name"] for a in authors)

    arxiv_newer = (fresh.get("arxiv_version") or 0) >= (values.get("arxiv_version") or 0)
    if arxiv_newer and new.categories:
        categories = list(dict.fromkeys(new.categories + old.categories))
    else:
        categories = list(dict.fromkeys(old.categories + new.categories))
    values["primary_category"] = categories[0] if categories else None
    if fresh.get("arxiv_version") is not None:
        values["arxiv_version"] = max(values.get("arxiv_version") or 0, fresh["arxiv_version"])

    for key, version in fresh_provenance.items():
        if key.startswith("_v:") and version is not None:
            provenance[key] = max(provenance.get(key) or 0, version)
    if fresh.get("citation_count") is not None:
        values["citation_count"] = max(values.get("citation_count") or 0, fresh["citation_count"])
    values["submitted_at"] = _earliest(values.get("submitted_at"), fresh.get("submitted_at"))
    values["announced_on"] = _earliest(values.get("announced_on"), fresh.get("announced_on"))
    values["updated_at"] = _latest(values.get("updated_at"), fresh.get("updated_at"))
    values["versions"] = _merge_versions(values.get("versions") or [], fresh.get("versions") or [])
    if not values.get("origin"):
        values["origin"] = fresh.get("origin")
    values["provenance"] = provenance
    values["title_key"] = title_key(values["title"] or "")
    values["first_author_key"] = first_author_key(authors)
    values["pub_year"] = _year(values)

    merged = PaperRow(
        values=values,
        authors=authors,
        categories=categories,
        subjects=list(dict.fromkeys([*old.subjects, *new.subjects])),
        identifiers={**new.identifiers, **old.identifiers},
        relations={**new.relations, **old.relations},
        id=old.id if old.id is not None else new.id,
    )
    values["content_hash"] = content_hash(merged)
    if values["content_hash"] != old.values.get("content_hash"):
        values["modified_at"] = now
    return merged


def merge_into(stored: PaperRow, record: PaperData, now: datetime) -> PaperRow:
    return merge_rows(stored, new_row(record, now), now)


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


# ----------------------------------------------------------------------------- fuzzy fallback

FUZZY_MIN_TITLE = 24  # characters of normalized title; "Editorial" or "Reply" never match


def fuzzy_compatible(a: PaperRow, b: PaperRow) -> bool:
    """Same work by the fallback rule: same normalized title (long enough), same first-author family
    name, years at most one apart, and no identifier scheme on which the two disagree."""
    va, vb = a.values, b.values
    if not va.get("title_key") or len(va["title_key"]) < FUZZY_MIN_TITLE or va["title_key"] != vb.get("title_key"):
        return False
    if not va.get("first_author_key") or va["first_author_key"] != vb.get("first_author_key"):
        return False
    ya, yb = va.get("pub_year"), vb.get("pub_year")
    if ya is not None and yb is not None and abs(ya - yb) > 1:
        return False
    return not conflicting_identifiers(a, b)


def conflicting_identifiers(a: PaperRow, b: PaperRow) -> bool:
    """Both carry an identifier of the same kind with different values (two DOIs, two arXiv ids)."""
    schemes_a: dict[str, set[str]] = {}
    for scheme, value in a.identifiers:
        if scheme not in LOCAL_KEYS:
            schemes_a.setdefault(scheme, set()).add(value)
    for scheme, value in b.identifiers:
        if scheme in schemes_a and value not in schemes_a[scheme]:
            return True
    return False


# Keys that name a record where it came from (a feed link, a library entry), not the work itself:
# two of them differing says nothing about whether two records are one work.
LOCAL_KEYS = frozenset({"url", "library"})
