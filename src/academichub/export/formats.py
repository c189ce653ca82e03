"""BibTeX, RIS and CSL-JSON writers over ExportRecord, each the mirror of its reader in
ingest/library_import.py: whatever that reader takes from a file (title, authors, abstract, DOI,
arXiv id, PMID, PMCID, venue, URL, date, type, publisher, ISSN, keywords) is written where and
how it looks, so an exported file imports back to the same fields. bibtexparser and rispy do the
file syntax; this module decides the fields and the TeX escaping.

BibTeX escaping: outside `$…$` every TeX-special character is escaped (`\\{`, `{\\textbackslash}`,
`\\&`, `-{}-` so "--" is not an en dash); `$…$` is kept as written (it is TeX already), its braces
escaped only when they do not pair up, so a title reads the same in LaTeX and back in."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Iterable

from .records import ExportRecord

FORMATS = ("bibtex", "ris", "csljson")
MEDIA_TYPES = {"bibtex": "application/x-bibtex", "ris": "application/x-research-info-systems",
               "csljson": "application/vnd.citationstyles.csl+json"}
SUFFIXES = {"bibtex": "bib", "ris": "ris", "csljson": "json"}

_MATH = re.compile(r"(\$\$[^$]+\$\$|\$[^$]+\$)")  # ingest/library_import.py's: what it keeps as written
_LITERAL_IN_MATH = re.compile(r"\\(?:backslash|textbackslash)|\\[{}$]")
_PREPRINT_VENUE = re.compile(r"^\s*(?:e-?print\s+)?arxiv\b|^\s*arxiv\s*(?:e-prints|preprint)", re.I)  # the importer's
_TEXT_ESCAPES = {"\\": "{\\textbackslash}", "{": "\\{", "}": "\\}", "$": "\\$", "&": "\\&", "%": "\\%", "#": "\\#",
                 "_": "\\_", "~": "{\\textasciitilde}"}
_BIBTEX_TYPES = {"journal-article": "article", "proceedings-article": "inproceedings", "book-chapter": "incollection",
                 "book": "book", "dissertation": "phdthesis", "report": "techreport"}
_VENUE_FIELD = {"article": "journal", "inproceedings": "booktitle", "incollection": "booktitle"}
_RIS_TYPES = {"journal-article": "JOUR", "proceedings-article": "CONF", "book-chapter": "CHAP", "book": "BOOK",
              "dissertation": "THES", "report": "RPRT", "preprint": "UNPB"}
_CSL_TYPES = {"journal-article": "article-journal", "proceedings-article": "paper-conference", "book-chapter": "chapter",
              "book": "book", "dissertation": "thesis", "report": "report", "preprint": "article"}


def kind(record: ExportRecord) -> str | None:
    """The record's work type as the writers name it: the stored one, else preprint (arXiv, no
    venue) or journal article (a venue)."""
    if (record.work_type in ("posted-content", "preprint") or (record.venue and _PREPRINT_VENUE.match(record.venue))
            or (record.arxiv_id and not record.venue)):
        return "preprint"
    if record.work_type in _BIBTEX_TYPES:
        return record.work_type
    return "journal-article" if record.venue else None


def _doi(record: ExportRecord) -> str | None:
    """arXiv's own DataCite DOI names the arXiv id, which is written anyway."""
    doi = record.doi
    return None if doi and doi.lower().startswith("10.48550/arxiv.") else doi


def _split_name(name: str) -> tuple[str, str]:
    """(given, family): the last word is the family name (what every reader joins back in order)."""
    words = name.split()
    if len(words) < 2:
        return "", name.strip()
    return " ".join(words[:-1]), words[-1]


# ----------------------------------------------------------------------------- BibTeX


def _balanced(text: str) -> bool:
    depth = 0
    for i, ch in enumerate(text):
        if ch in "{}" and i and text[i - 1] == "\\":
            continue
        depth += 1 if ch == "{" else -1 if ch == "}" else 0
        if depth < 0:
            return False
    return depth == 0


def _tex_text(piece: str) -> str:
    out = "".join(_TEXT_ESCAPES.get(ch, ch) for ch in piece)
    while "--" in out:
        out = out.replace("--", "-{}-")
    return out


def tex_escape(text: str) -> str:
    """Unicode text as a BibTeX value the importer reads back unchanged (math kept as TeX)."""
    pieces = _MATH.split(text or "")
    out = []
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            out.append(_tex_text(piece))
            continue
        if _LITERAL_IN_MATH.search(piece) or not _balanced(piece):
            out.append(_tex_text(piece))  # not math the importer would keep as written: text, escaped
        else:
            out.append(piece)
    return "".join(out)


def _bib_name(name: str) -> str:
    escaped = tex_escape(name)
    if "," in name or re.search(r"\band\b", name, re.I):
        return "{" + escaped + "}"  # one name, not "Last, First" nor two people
    return escaped


def cite_key(record: ExportRecord) -> str:
    """firstauthorYEARfirstword, ASCII only (e.g. burkard2024spin)."""
    family = _split_name(record.authors[0])[1] if record.authors else "anon"
    family = family.replace(",", " ").split()[-1] if family.replace(",", " ").split() else "anon"
    words = [w for w in re.findall(r"[A-Za-z]+", record.title or "") if len(w) > 3]
    year = record.published.year if record.published else ""
    ascii_only = unicodedata.normalize("NFKD", f"{family}{year}{words[0] if words else ''}")
    key = re.sub(r"[^A-Za-z0-9]", "", ascii_only.encode("ascii", "ignore").decode()).lower()
    return key or f"paper{record.id}"


def _unique_keys(records: list[ExportRecord]) -> list[str]:
    keys, seen = [], set()
    for record in records:
        base = key = cite_key(record)
        n = 0
        while key in seen:
            n += 1
            key = f"{base}{chr(ord('a') + n - 1) if n <= 26 else n}"
        seen.add(key)
        keys.append(key)
    return keys


def bibtex_entry(record: ExportRecord, key: str, *, full: bool = True):
    """One bibtexparser Entry. `full` adds what a library keeps and a citation box leaves out
    (abstract, exact date, identifiers beyond DOI and arXiv, publisher, ISSN, keywords)."""
    from bibtexparser.model import Entry, Field

    work = kind(record)
    entry_type = _BIBTEX_TYPES.get(work or "", "misc")
    if entry_type == "misc" and record.venue and work != "preprint":
        entry_type = "article"
    fields = [Field("title", "{" + tex_escape(" ".join(record.title.split())) + "}")]
    if record.authors:
        fields.append(Field("author", " and ".join(_bib_name(a) for a in record.authors)))
    if record.venue and work != "preprint":
        fields.append(Field(_VENUE_FIELD.get(entry_type, "journal"), tex_escape(record.venue)))
    if record.published:
        fields.append(Field("year", str(record.published.year)))
        if full:
            fields.append(Field("date", record.published.isoformat()))
    if doi := _doi(record):
        fields.append(Field("doi", doi))
    if record.arxiv_id:
        fields += [Field("eprint", record.arxiv_id), Field("archivePrefix", "arXiv")]
        if record.primary_category:
            fields.append(Field("primaryClass", record.primary_category))
    if record.url:
        fields.append(Field("url", record.url.replace(" ", "%20")))
    if full:
        if work == "preprint" and not record.arxiv_id:
            fields.append(Field("pubstate", "preprint"))
        if record.pmid:
            fields.append(Field("pmid", record.pmid))
        if record.pmcid:
            fields.append(Field("pmcid", record.pmcid))
        if record.publisher:
            fields.append(Field("publisher", tex_escape(record.publisher)))
        if record.issn:
            fields.append(Field("issn", record.issn))
        if record.keywords:
            fields.append(Field("keywords", ", ".join(tex_escape(k) for k in record.keywords)))
        if record.abstract:
            fields.append(Field("abstract", tex_escape(" ".join(record.abstract.split()))))
    return Entry(entry_type, key, fields)


def to_bibtex(records: Iterable[ExportRecord], *, full: bool = True) -> str:
    import bibtexparser

    records = list(records)
    entries = [bibtex_entry(r, k, full=full) for r, k in zip(records, _unique_keys(records))]
    if not entries:
        return ""
    return bibtexparser.write_string(bibtexparser.Library(entries)).strip() + "\n"


# ----------------------------------------------------------------------------- RIS


def _ris_name(name: str) -> str:
    given, family = _split_name(name)
    return f"{family}, {given}" if given else family


def ris_reference(record: ExportRecord, key: str) -> dict:
    work = kind(record)
    ref: dict = {"type_of_reference": _RIS_TYPES.get(work or "", "GEN"), "id": key,
                 "title": " ".join(record.title.split())}
    if record.authors:
        ref["authors"] = [_ris_name(a) for a in record.authors]
    if record.published:
        ref["year"] = str(record.published.year)
        ref["date"] = record.published.strftime("%Y/%m/%d")
    if record.venue and work not in ("preprint", "book"):
        ref["journal_name"] = record.venue
    if doi := _doi(record):
        ref["doi"] = doi
    urls = [u for u in (
        record.url and record.url.replace(" ", "%20"),
        f"https://arxiv.org/abs/{record.arxiv_id}" if record.arxiv_id else None,
        f"https://pubmed.ncbi.nlm.nih.gov/{record.pmid}/" if record.pmid else None,
    ) if u]
    if urls:
        ref["urls"] = list(dict.fromkeys(urls))
    notes = []
    if record.arxiv_id:
        notes.append(f"arXiv:{record.arxiv_id}")
    if record.pmcid:
        notes.append(f"PMCID: {record.pmcid}")
    if notes:
        ref["notes"] = notes
    if record.publisher:
        ref["publisher"] = record.publisher
    if record.issn:
        ref["issn"] = record.issn
    if record.keywords:
        ref["keywords"] = list(record.keywords)
    if record.abstract:
        ref["abstract"] = " ".join(record.abstract.split())
    return ref


def to_ris(records: Iterable[ExportRecord]) -> str:
    import rispy
    from rispy.writer import RisWriter

    class PlainRisWriter(RisWriter):
        """RIS as reference managers write it: no "1." counter line before each record."""

        def set_header(self, count: int) -> str:
            return ""

    records = list(records)
    if not records:
        return ""
    text = rispy.dumps([ris_reference(r, k) for r, k in zip(records, _unique_keys(records))], implementation=PlainRisWriter)
    return text.lstrip("\n") if text.endswith("\n") else text.lstrip("\n") + "\n"


# ----------------------------------------------------------------------------- CSL-JSON


def csl_item(record: ExportRecord, key: str) -> dict:
    work = kind(record)
    item: dict = {"id": key, "type": _CSL_TYPES.get(work or "", "document"), "title": " ".join(record.title.split())}
    if record.authors:
        item["author"] = [{"given": g, "family": f} if g else {"family": f} for g, f in map(_split_name, record.authors)]
    if record.published:
        p = record.published
        item["issued"] = {"date-parts": [[p.year, p.month, p.day]]}
    if record.venue and work != "preprint":
        item["container-title"] = record.venue
    if doi := _doi(record):
        item["DOI"] = doi
    if record.url:
        item["URL"] = record.url.replace(" ", "%20")
    if record.arxiv_id:
        item["note"] = f"arXiv:{record.arxiv_id}"
        if work == "preprint":
            item["number"] = f"arXiv:{record.arxiv_id}"
    if record.pmid:
        item["PMID"] = record.pmid
    if record.pmcid:
        item["PMCID"] = record.pmcid
    if record.publisher:
        item["publisher"] = record.publisher
    if record.issn:
        item["ISSN"] = record.issn
    if record.keywords:
        item["keyword"] = ", ".join(record.keywords)
    if record.abstract:
        item["abstract"] = " ".join(record.abstract.split())
    return item


def to_csljson(records: Iterable[ExportRecord]) -> str:
    records = list(records)
    items = [csl_item(r, k) for r, k in zip(records, _unique_keys(records))]
    return json.dumps(items, ensure_ascii=False, indent=2) + "\n"


def render(records: Iterable[ExportRecord], fmt: str) -> str:
    """The records in one of FORMATS."""
    if fmt == "bibtex":
        return to_bibtex(records)
    if fmt == "ris":
        return to_ris(records)
    if fmt == "csljson":
        return to_csljson(records)
    raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")


# ----------------------------------------------------------------------------- a citation line


def plain_citation(record: ExportRecord) -> str:
    """Authors (year). Title. Venue or arXiv id. DOI or URL: one line to paste."""
    authors = record.authors
    title = " ".join(record.title.split())
    year = record.published.year if record.published else None
    doi = record.doi
    shown = ", ".join(authors[:3]) + (" et al." if len(authors) > 3 else "")
    where = record.venue or (f"arXiv:{record.arxiv_id}" if record.arxiv_id else "")
    bits = [f"{shown}{' ' if shown else ''}({year})." if year else (f"{shown}." if shown else ""), f"{title}."]
    if where:
        bits.append(f"{where}.")
    if doi:
        bits.append(f"https://doi.org/{doi}")
    elif record.url:
        bits.append(record.url)
    return " ".join(b for b in bits if b)


__all__ = ["FORMATS", "MEDIA_TYPES", "SUFFIXES", "bibtex_entry", "cite_key", "csl_item", "kind", "plain_citation",
           "render", "ris_reference", "tex_escape", "to_bibtex", "to_csljson", "to_ris"]
