"""PubMed through NCBI's E-utilities: ESearch (JSON) finds PMIDs and leaves them on the History
server, EFetch (XML) returns them as a PubmedArticleSet of PubmedArticle and PubmedBookArticle.

What PubMed records look like, and what we make of them:

- Titles and abstracts carry inline markup (<i>, <sub>, <sup>, even MathML); it is flattened to
  its text. Structured abstracts keep their labels ("OBJECTIVE: … DESIGN: …") because the labels
  are part of how the authors wrote it; CopyrightInformation is the publisher's, not the abstract.
- A record's own ids are PubmedData/ArticleIdList; the same element also appears inside
  ReferenceList for every cited work, so only the direct child counts. ELocationID is the DOI
  of last resort (it is what the publisher sent, before PubMed confirmed it).
- Dates come in three shapes: ArticleDate (electronic, to the day), the issue's PubDate (Year with
  a month name or number, a Season, or a free-text MedlineDate such as "1998 Dec-1999 Jan"), and
  the History's PubMedPubDate entries. `published` is the first of ArticleDate, PubDate and the
  PubMed date that exists; a PubDate that names only a year is refined by the PubMed date of the
  same year rather than pretending to be 1 January. `announced` is the Entrez date: the day the
  record appeared in PubMed, which is what a radar (and esearch's datetype=edat) is about.
- A preprint indexed in PubMed (PublicationType "Preprint") names its journal version in a
  CommentsCorrections RefType="UpdateIn"; that becomes a "preprint-of" relation by PMID. UpdateIn
  elsewhere (a review's newer edition) says nothing about preprints and stays in raw.
- The recorded responses name an external DTD; it is never fetched (xmlsafe loads no DTD).

PMC's efetch answers with a different document (pmc-articleset of JATS <article>); parse_pmc reads
its front matter into records of source "pmc", keyed by PMCID, because it is a different upstream
record (PMC's copy, with licence and full text) of what PubMed describes under a PMID.

Rate limits are NCBI's: 3 requests a second without an API key, 10 with one, per process. The
client refuses a PoliteClient whose min_interval would break them."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from typing import Iterator, NamedTuple

from lxml import etree

from ..cleantext import clean_text
from ..errors import ConfigError, FeedError, ParseError, SourceError
from ..model import AuthorData, ParsedBatch, PaperData, RelationData
from .http import Fetched, HTTPStatusError, PoliteClient
from .jsonsafe import json_or_none, load_json
from .kinds import FileFormat, Fetch, MergeFamily, Page, Param, SourceKind, xml_root
from .xmlsafe import parse_xml

SOURCE = "pubmed"
PMC_SOURCE = "pmc"
BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
MAX_EFETCH_BATCH = 200  # NCBI: use POST above 200 UIDs; we keep every request a GET
MAX_SEARCH_RESULTS = 10_000  # PubMed lets neither ESearch nor the History server go past the first 10,000
DATETYPES = ("edat", "pdat", "mdat")

_MATHML = "{http://www.w3.org/1998/Math/MathML}"
_XLINK = "{http://www.w3.org/1999/xlink}"
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.I)
_ORCID = re.compile(r"(?<!\d)(\d{4})-?(\d{4})-?(\d{4})-?(\d{3}[\dX])$", re.I)
_PMID = re.compile(r"^\d{1,9}$")
_API_KEY_PARAM = re.compile(r"(?<=[?&]api_key=)[^&]*")
_MEDLINE_DATE = re.compile(r"^\s*(\d{4})(?:\s+([A-Za-z]+)(?:\s+(\d{1,2})(?!\d))?)?")
_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
# Quarterly journals number their Winter issue first, so Winter opens the year it names.
_SEASONS = {"winter": 1, "spring": 3, "summer": 6, "fall": 9, "autumn": 9}
# Preprint servers by the ISO abbreviation PubMed gives them as a journal.
_PREPRINT_SERVERS = {"biorxiv": "biorxiv", "medrxiv": "medrxiv"}
# PublicationTypes that say what kind of work this is (rather than its funding or study design);
# the first one present wins over the generic "Journal Article".
_WORK_TYPES = (
    "Retraction of Publication", "Retracted Publication", "Published Erratum", "Expression of Concern",
    "Preprint", "Systematic Review", "Meta-Analysis", "Scoping Review", "Review", "Practice Guideline",
    "Guideline", "Consensus Development Conference", "Congress", "Case Reports", "Editorial", "Letter",
    "Comment", "News", "Newspaper Article", "Interview", "Lecture", "Biography", "Autobiography",
    "Historical Article", "Personal Narrative", "Portrait", "Dataset",
)


# --- text -----------------------------------------------------------------------------------------


def _inner_text(element: etree._Element) -> str:
    """The text of an element with its inline markup dropped (comments too, but not their tails)."""
    parts = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str):
            parts.append(_math_text(child) if child.tag == _MATHML + "math" else _inner_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _math_text(element: etree._Element) -> str:
    """MathML as a reader would type it: tokens joined, prescripts before their base (³He -> "3He")."""
    local = etree.QName(element).localname
    if local in ("mi", "mn", "mo", "ms"):
        return (element.text or "").strip()
    if local == "mtext":
        return element.text or ""
    children = [c for c in element if isinstance(c.tag, str)]
    names = [etree.QName(c).localname for c in children]
    if local == "mmultiscripts" and "mprescripts" in names:
        cut = names.index("mprescripts")
        children = children[cut + 1 :] + children[:cut]
    return "".join(_math_text(c) for c in children)


def _flat(element: etree._Element | None) -> str:
    return clean_text(_inner_text(element)) if element is not None else ""


def _child_text(parent: etree._Element | None, path: str) -> str:
    return clean_text(parent.findtext(path)) if parent is not None else ""


def normalize_doi(text: str | None) -> str | None:
    """'https://doi.org/10.1136/GUT' -> '10.1136/gut' (DOIs are case-insensitive; we store them lower)."""
    if not text:
        return None
    doi = _DOI_PREFIX.sub("", text.strip()).strip().lower()
    return doi or None


def normalize_orcid(text: str | None) -> str | None:
    """The bare 0000-0002-4590-7461 form of an ORCID iD given as URL, with or without hyphens; None
    when it is not one (the ISO 7064 check digit catches typing errors, which PubMed does carry)."""
    match = _ORCID.search((text or "").strip().rstrip("/"))
    if not match:
        return None
    digits = "".join(match.groups()).upper()
    total = 0
    for ch in digits[:-1]:
        total = (total + int(ch)) * 2
    check = (12 - total % 11) % 11
    if digits[-1] != ("X" if check == 10 else str(check)):
        return None
    return "-".join(match.groups()).upper()


def _pmcid(text: str | None) -> str | None:
    """'PMC5442267' whether PubMed wrote it with the prefix or PMC without."""
    value = (text or "").strip().upper()
    if value.startswith("PMC"):
        value = value[3:]
    return f"PMC{value}" if value.isascii() and value.isdigit() else None


def _untranslated_title(title: str) -> str:
    """PubMed brackets titles it translated into English: "[Title]." -> "Title"."""
    match = re.fullmatch(r"\[(.*)\]\.?", title)
    if not match:
        return title
    depth = 0
    for ch in match.group(1):  # "[A] and [B]" is two brackets, not one around everything
        depth += (ch == "[") - (ch == "]")
        if depth < 0:
            return title
    return match.group(1).strip() if depth == 0 else title


# --- dates ----------------------------------------------------------------------------------------


class _Dated(NamedTuple):
    value: date
    precision: str  # "day" | "month" | "season" | "year"


def _make_date(year: int, month: int | None, day: int | None) -> _Dated | None:
    if not 1000 <= year <= 9999:
        return None
    if month is None or not 1 <= month <= 12:
        return _Dated(date(year, 1, 1), "year")
    if day is None or day < 1:
        return _Dated(date(year, month, 1), "month")
    return _Dated(date(year, month, min(day, calendar.monthrange(year, month)[1])), "day")


def _month_number(text: str) -> int | None:
    text = text.strip().lower()
    return _int_or_none(text) or _MONTHS.get(text[:3]) or _SEASONS.get(text)


def _int_or_none(text: str) -> int | None:
    """ASCII digits only: str.isdigit() also takes "²", which int() refuses, and an endless run of
    digits is past int()'s limit too; no date part has more than four."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 4 else None


def _structured_date(element: etree._Element | None) -> _Dated | None:
    """Year/Month/Day (month as name or number), Season, or MedlineDate; None when there is no year."""
    if element is None:
        return None
    year = _int_or_none(element.findtext("Year") or "")
    if year is None:
        return _medline_date(element.findtext("MedlineDate") or "")
    month_text = element.findtext("Month") or element.findtext("Season") or ""
    month = _month_number(month_text) if month_text.strip() else None
    dated = _make_date(year, month, _int_or_none(element.findtext("Day") or ""))
    return _season_precision(dated, month_text)


def _medline_date(text: str) -> _Dated | None:
    """'2004 Jan-Feb', '1998 Dec-1999 Jan', '2005 Aug 20-26', '2000 Spring' -> the first day named."""
    match = _MEDLINE_DATE.match(text)
    if not match:
        return None
    month = _month_number(match.group(2)) if match.group(2) else None
    day = int(match.group(3)) if match.group(3) and month else None
    return _season_precision(_make_date(int(match.group(1)), month, day), match.group(2) or "")


def _season_precision(dated: _Dated | None, month_text: str) -> _Dated | None:
    """A season is coarser than the month it is dated to."""
    if dated is not None and month_text.strip().lower() in _SEASONS:
        return dated._replace(precision="season")
    return dated


def _history_date(pubmed_data: etree._Element | None, status: str) -> _Dated | None:
    if pubmed_data is None:
        return None
    for entry in pubmed_data.iterfind("History/PubMedPubDate"):
        if entry.get("PubStatus") == status:
            return _structured_date(entry)
    return None


def _best_published(
    candidates: list[tuple[str, _Dated | None]], pubmed: _Dated | None
) -> tuple[_Dated | None, str | None]:
    """The first candidate that exists, else the PubMed date; a year alone gives way to the PubMed
    date of the same year (1 January would be invented)."""
    for label, dated in [*candidates, ("PubMedPubDate", pubmed)]:
        if dated is None:
            continue
        if dated.precision == "year" and pubmed is not None and pubmed.value.year == dated.value.year:
            return pubmed, "PubMedPubDate"
        return dated, label
    return None, None


def _iso(dated: _Dated | None) -> str | None:
    return dated.value.isoformat() if dated is not None else None


def _date_fields(element: etree._Element | None) -> dict | None:
    """A date element's parts as written, for raw."""
    if element is None:
        return None
    return {child.tag: clean_text(child.text) for child in element if isinstance(child.tag, str)}


# --- PubmedArticleSet -----------------------------------------------------------------------------


def parse_efetch(content: bytes, location: str) -> ParsedBatch:
    """A PubmedArticleSet (EFetch db=pubmed retmode=xml) -> one PaperData per article, in order."""
    root = parse_xml(content, location)
    if root.tag == "eFetchResult":
        message = clean_text(root.findtext("ERROR")) or "no reason given"
        raise FeedError(f"E-utilities refused the request: {message}", url=location)
    if root.tag == "pmc-articleset":
        raise ParseError("a PMC article set, not a PubmedArticleSet: parse it with parse_pmc",
                         location=location, line=root.sourceline)
    if root.tag != "PubmedArticleSet":
        raise ParseError(f"not a PubmedArticleSet (root <{root.tag}>)", location=location, line=root.sourceline)
    papers: list[PaperData] = []
    for child in root:
        if child.tag == "PubmedArticle":
            papers.append(_parse_article(child, location))
        elif child.tag == "PubmedBookArticle":
            papers.append(_parse_book_article(child, location))
    return ParsedBatch(papers=papers)


def _required_pmid(parent: etree._Element, record: etree._Element, location: str) -> str:
    pmid = clean_text(parent.findtext("PMID"))
    if not _PMID.match(pmid):
        raise ParseError(f"record without a valid PMID ({pmid!r})", location=location, line=record.sourceline)
    return pmid


def _abstract(abstract: etree._Element | None) -> tuple[str, list[dict], str | None]:
    """(text, sections for raw, copyright). Labelled sections read 'LABEL: text'."""
    if abstract is None:
        return "", [], None
    sections = [
        {"label": part.get("Label"), "nlm_category": part.get("NlmCategory"), "text": _flat(part)}
        for part in abstract.iterfind("AbstractText")
    ]
    pieces = []
    for section in sections:
        label = (section["label"] or "").strip()
        if not section["text"]:
            continue
        pieces.append(f"{label}: {section['text']}" if label and label.upper() != "UNLABELLED" else section["text"])
    copyright_text = _flat(abstract.find("CopyrightInformation")) or None
    return " ".join(pieces), sections, copyright_text


def _authors(author_lists: list[etree._Element]) -> tuple[list[AuthorData], list[dict]]:
    authors: list[AuthorData] = []
    raw_authors: list[dict] = []
    for author_list in author_lists:
        for author in author_list.iterfind("Author"):
            last = _child_text(author, "LastName")
            fore = _child_text(author, "ForeName") or _child_text(author, "Initials")
            suffix = _child_text(author, "Suffix")
            collective = _flat(author.find("CollectiveName"))
            affiliations = [_flat(a) for a in author.iterfind("AffiliationInfo/Affiliation")]
            identifiers = [
                {"source": i.get("Source"), "value": clean_text(i.text)} for i in author.iterfind("Identifier")
            ]
            valid = author.get("ValidYN", "Y") != "N"
            raw_authors.append({
                "last_name": last or None, "fore_name": _child_text(author, "ForeName") or None,
                "initials": _child_text(author, "Initials") or None, "suffix": suffix or None,
                "collective_name": collective or None, "affiliations": affiliations,
                "identifiers": identifiers, "valid": valid,
            })
            name = " ".join(p for p in (fore, last, suffix) if p) if last else collective
            if not name or not valid:  # ValidYN="N": a name PubMed keeps only to record its correction
                continue
            orcid = next((normalize_orcid(i["value"]) for i in identifiers if (i["source"] or "").upper() == "ORCID"),
                         None)
            authors.append(AuthorData(name=name, affiliation="; ".join(a for a in affiliations if a) or None,
                                      orcid=orcid))
    return authors, raw_authors


def _author_lists(parent: etree._Element | None) -> list[etree._Element]:
    """Author lists naming authors (editors are not authors of the work)."""
    if parent is None:
        return []
    return [al for al in parent.iterfind("AuthorList") if al.get("Type", "authors") == "authors"]


def _article_ids(id_list: etree._Element | None) -> dict[str, str]:
    ids: dict[str, str] = {}
    if id_list is not None:
        for article_id in id_list.iterfind("ArticleId"):
            id_type = (article_id.get("IdType") or "").strip()
            value = clean_text(article_id.text)
            if id_type and value:
                ids.setdefault(id_type, value)
    return ids


def _elocation_ids(parent: etree._Element | None) -> list[dict]:
    if parent is None:
        return []
    return [
        {"type": e.get("EIdType"), "value": clean_text(e.text), "valid": e.get("ValidYN", "Y") != "N"}
        for e in parent.iterfind("ELocationID")
    ]


def _work_type(publication_types: list[str], default: str | None) -> str | None:
    present = {t.lower() for t in publication_types}
    for work_type in _WORK_TYPES:
        if work_type.lower() in present:
            return work_type.lower()
    if "journal article" in present:
        return "journal article"
    return default if default else (publication_types[0].lower() if publication_types else None)


def _mesh(citation: etree._Element) -> tuple[list[tuple[str, str]], list[dict]]:
    subjects: list[tuple[str, str]] = []
    raw_mesh: list[dict] = []
    for heading in citation.iterfind("MeshHeadingList/MeshHeading"):
        descriptor = heading.find("DescriptorName")
        name = _flat(descriptor)
        if not name:
            continue
        subjects.append(("mesh", name))
        raw_mesh.append({
            "ui": descriptor.get("UI"), "name": name, "major": descriptor.get("MajorTopicYN") == "Y",
            "qualifiers": [
                {"ui": q.get("UI"), "name": _flat(q), "major": q.get("MajorTopicYN") == "Y"}
                for q in heading.iterfind("QualifierName")
            ],
        })
    return subjects, raw_mesh


def _linked_records(citation: etree._Element) -> list[dict]:
    """CommentsCorrections other than citations: errata, retractions, comments, updates."""
    return [
        {"type": link.get("RefType"), "pmid": clean_text(link.findtext("PMID")) or None,
         "source": clean_text(link.findtext("RefSource")) or None}
        for link in citation.iterfind("CommentsCorrectionsList/CommentsCorrections")
        if link.get("RefType") != "Cites"
    ]


def _preprint_relations(work_type: str | None, linked: list[dict]) -> list[RelationData]:
    if work_type != "preprint":
        return []
    return [RelationData("preprint-of", "pmid", link["pmid"])
            for link in linked if link["type"] == "UpdateIn" and _PMID.match(link["pmid"] or "")]


def _keywords(parent: etree._Element) -> list[str]:
    return list(dict.fromkeys(k for k in (_flat(k) for k in parent.iterfind("KeywordList/Keyword")) if k))


def _history(pubmed_data: etree._Element | None) -> list[dict]:
    if pubmed_data is None:
        return []
    return [
        {"status": entry.get("PubStatus"), "date": _iso(_structured_date(entry))}
        for entry in pubmed_data.iterfind("History/PubMedPubDate")
    ]


def _title(element: etree._Element | None, vernacular: etree._Element | None) -> str:
    return _untranslated_title(_flat(element)) or _flat(vernacular)


def _pubmed_url(pmid: str) -> str:
    return f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"


def _parse_article(record: etree._Element, location: str) -> PaperData:
    citation = record.find("MedlineCitation")
    if citation is None:
        raise ParseError("PubmedArticle without MedlineCitation", location=location, line=record.sourceline)
    pmid = _required_pmid(citation, record, location)
    article = citation.find("Article")
    if article is None:
        raise ParseError(f"PMID {pmid}: no Article", location=location, line=citation.sourceline)
    pubmed_data = record.find("PubmedData")
    journal = article.find("Journal")
    journal_issue = journal.find("JournalIssue") if journal is not None else None

    title_element = article.find("ArticleTitle")
    abstract, sections, copyright_text = _abstract(article.find("Abstract"))
    authors, raw_authors = _authors(_author_lists(article))
    ids = _article_ids(pubmed_data.find("ArticleIdList") if pubmed_data is not None else None)
    elocations = _elocation_ids(article)
    doi = normalize_doi(ids.get("doi")) or next(
        (normalize_doi(e["value"]) for e in elocations if e["type"] == "doi" and e["valid"]), None
    )
    issn_elements = journal.findall("ISSN") if journal is not None else []
    issn_linking = _child_text(citation, "MedlineJournalInfo/ISSNLinking")
    issns = list(dict.fromkeys(i for i in [*(clean_text(e.text) for e in issn_elements), issn_linking] if i))
    subjects, raw_mesh = _mesh(citation)
    publication_types = [clean_text(t.text) for t in article.iterfind("PublicationTypeList/PublicationType")]

    electronic_element = next(
        (d for d in article.iterfind("ArticleDate") if d.get("DateType", "Electronic") == "Electronic"), None
    )
    pub_date_element = journal_issue.find("PubDate") if journal_issue is not None else None
    pubmed_date = _history_date(pubmed_data, "pubmed")
    published, published_from = _best_published(
        [("ArticleDate", _structured_date(electronic_element)), ("PubDate", _structured_date(pub_date_element))],
        pubmed_date,
    )
    entrez = _history_date(pubmed_data, "entrez") or pubmed_date
    iso_abbreviation = _child_text(journal, "ISOAbbreviation") or None
    work_type = _work_type(publication_types, None)
    linked = _linked_records(citation)

    raw = {
        "pmid": pmid,
        "medline_status": citation.get("Status"),
        "article_title": _inner_text(title_element) if title_element is not None else None,
        "vernacular_title": _flat(article.find("VernacularTitle")) or None,
        "abstract_sections": sections,
        "copyright": copyright_text,
        "authors": raw_authors,
        "journal": _child_text(journal, "Title") or None,
        "iso_abbreviation": iso_abbreviation,
        "medline_ta": _child_text(citation, "MedlineJournalInfo/MedlineTA") or None,
        "nlm_unique_id": _child_text(citation, "MedlineJournalInfo/NlmUniqueID") or None,
        "issn": [{"type": e.get("IssnType"), "value": clean_text(e.text)} for e in issn_elements],
        "issn_linking": issn_linking or None,
        "volume": _child_text(journal_issue, "Volume") or None,
        "issue": _child_text(journal_issue, "Issue") or None,
        "pages": _child_text(article, "Pagination/MedlinePgn") or None,
        "pub_date": _date_fields(pub_date_element),
        "article_date": _date_fields(electronic_element),
        "pub_model": article.get("PubModel"),
        "elocation_ids": elocations,
        "article_ids": ids,
        "publication_types": publication_types,
        "language": [clean_text(lang.text) for lang in article.iterfind("Language") if clean_text(lang.text)],
        "mesh": raw_mesh,
        "keywords": _keywords(citation),
        "linked_records": linked,
        "history": _history(pubmed_data),
        "publication_status": _child_text(pubmed_data, "PublicationStatus") or None,
        "date_revised": _iso(_structured_date(citation.find("DateRevised"))),
        "published_from": published_from,
        "published_precision": published.precision if published else None,
    }
    return PaperData(
        source=SOURCE,
        source_id=pmid,
        title=_title(title_element, article.find("VernacularTitle")),
        abstract=abstract,
        authors=authors,
        doi=doi,
        pmid=pmid,
        pmcid=_pmcid(ids.get("pmc")),
        venue=raw["journal"],
        url_abs=_pubmed_url(pmid),
        announced=entrez.value if entrez else None,
        published=published.value if published else None,
        work_type=work_type,
        issns=issns,
        subjects=subjects,
        keywords=raw["keywords"],
        relations=_preprint_relations(work_type, linked),
        server=_PREPRINT_SERVERS.get((iso_abbreviation or "").lower()) if work_type == "preprint" else None,
        raw=raw,
    )


def _parse_book_article(record: etree._Element, location: str) -> PaperData:
    """A chapter (or a whole book) of NCBI Bookshelf, indexed in PubMed: the book is the venue."""
    document = record.find("BookDocument")
    if document is None:
        raise ParseError("PubmedBookArticle without BookDocument", location=location, line=record.sourceline)
    pmid = _required_pmid(document, record, location)
    book = document.find("Book")
    book_data = record.find("PubmedBookData")
    book_title = _flat(book.find("BookTitle")) if book is not None else ""
    chapter_title = _title(document.find("ArticleTitle"), document.find("VernacularTitle"))

    abstract, sections, copyright_text = _abstract(document.find("Abstract"))
    authors, raw_authors = _authors(_author_lists(document) or _author_lists(book))
    ids = {**_article_ids(document.find("ArticleIdList")),
           **_article_ids(book_data.find("ArticleIdList") if book_data is not None else None)}
    elocations = _elocation_ids(book)
    doi = normalize_doi(ids.get("doi")) or next(
        (normalize_doi(e["value"]) for e in elocations if e["type"] == "doi" and e["valid"]), None
    )
    publication_types = [clean_text(t.text) for t in document.iterfind("PublicationType")]
    pub_date_element = book.find("PubDate") if book is not None else None
    pubmed_date = _history_date(book_data, "pubmed")
    # A chapter's ContributionDate is its own; the Book's PubDate may be when the series began.
    contribution_element = document.find("ContributionDate")
    published, published_from = _best_published(
        [("ContributionDate", _structured_date(contribution_element)),
         ("PubDate", _structured_date(pub_date_element))],
        pubmed_date,
    )
    entrez = _history_date(book_data, "entrez") or pubmed_date

    raw = {
        "pmid": pmid,
        "article_title": chapter_title or None,
        "book_title": book_title or None,
        "abstract_sections": sections,
        "copyright": copyright_text,
        "authors": raw_authors,
        "publisher": _child_text(book, "Publisher/PublisherName") or None,
        "publisher_location": _child_text(book, "Publisher/PublisherLocation") or None,
        "isbn": [clean_text(i.text) for i in book.iterfind("Isbn")] if book is not None else [],
        "pub_date": _date_fields(pub_date_element),
        "contribution_date": _date_fields(contribution_element),
        "elocation_ids": elocations,
        "article_ids": ids,
        "publication_types": publication_types,
        "language": [clean_text(lang.text) for lang in document.iterfind("Language") if clean_text(lang.text)],
        "keywords": _keywords(document),
        "history": _history(book_data),
        "publication_status": _child_text(book_data, "PublicationStatus") or None,
        "published_from": published_from,
        "published_precision": published.precision if published else None,
    }
    return PaperData(
        source=SOURCE,
        source_id=pmid,
        title=chapter_title or book_title,
        abstract=abstract,
        authors=authors,
        doi=doi,
        pmid=pmid,
        pmcid=_pmcid(ids.get("pmc")),
        venue=book_title or None,
        publisher=raw["publisher"],
        url_abs=_pubmed_url(pmid),
        announced=entrez.value if entrez else None,
        published=published.value if published else None,
        work_type=_work_type(publication_types, "book chapter" if chapter_title else "book"),
        keywords=raw["keywords"],
        raw=raw,
    )


# --- PMC article set (JATS) -----------------------------------------------------------------------


def parse_pmc(content: bytes, location: str) -> ParsedBatch:
    """A pmc-articleset (EFetch db=pmc) -> one PaperData (source "pmc") per article, front matter only."""
    root = parse_xml(content, location)
    if root.tag == "PubmedArticleSet":
        raise ParseError("a PubmedArticleSet, not a PMC article set: parse it with parse_efetch",
                         location=location, line=root.sourceline)
    if root.tag == "article":
        articles = [root]
    elif root.tag == "pmc-articleset":
        articles = root.findall("article")
    else:
        raise ParseError(f"not a PMC article set (root <{root.tag}>)", location=location, line=root.sourceline)
    return ParsedBatch(papers=[_parse_pmc_article(a, location) for a in articles])


def _jats_ids(meta: etree._Element) -> dict[str, str]:
    ids: dict[str, str] = {}
    for article_id in meta.iterfind("article-id"):
        id_type = (article_id.get("pub-id-type") or "").strip()
        value = clean_text(article_id.text)
        if id_type and value:
            ids.setdefault(id_type, value)
    return ids


def _jats_date(element: etree._Element | None) -> _Dated | None:
    if element is None:
        return None
    year = _int_or_none(element.findtext("year") or "")
    if year is None:
        return None
    month_text = element.findtext("month") or element.findtext("season") or ""
    return _make_date(year, _month_number(month_text) if month_text.strip() else None,
                      _int_or_none(element.findtext("day") or ""))


def _jats_pub_date(meta: etree._Element, *kinds: str) -> etree._Element | None:
    """pub-date by the old pub-type ("epub") or the JATS 1.1 date-type/publication-format pair."""
    for pub_date in meta.iterfind("pub-date"):
        kind = pub_date.get("pub-type")
        if kind is None and pub_date.get("date-type", "pub") == "pub":
            kind = {"electronic": "epub", "print": "ppub"}.get(pub_date.get("publication-format", ""))
        if kind is None:
            kind = pub_date.get("date-type")
        if kind in kinds:
            return pub_date
    return None


def _jats_abstract(meta: etree._Element) -> str:
    abstracts = meta.findall("abstract")
    abstract = next((a for a in abstracts if a.get("abstract-type") is None), abstracts[0] if abstracts else None)
    if abstract is None:
        return ""
    pieces = []
    for child in abstract:
        if child.tag == "sec":
            heading = _flat(child.find("title"))
            body = " ".join(_flat(c) for c in child if isinstance(c.tag, str) and c.tag != "title")
            pieces.append(f"{heading}: {clean_text(body)}" if heading else body)
        elif child.tag not in ("title", "label") and isinstance(child.tag, str):
            pieces.append(_flat(child))
    return clean_text(" ".join(pieces))


def _jats_authors(meta: etree._Element, front: etree._Element) -> tuple[list[AuthorData], list[dict]]:
    affiliations = {}
    for aff in front.iter("aff"):
        label = aff.find("label")
        text = _inner_text(aff)
        if label is not None:  # the footnote mark ("1", "a") is not part of the address
            text = text.replace(label.text or "", "", 1)
        affiliations[aff.get("id")] = clean_text(text)
    authors: list[AuthorData] = []
    raw_authors: list[dict] = []
    for contrib in meta.iterfind("contrib-group/contrib"):
        if contrib.get("contrib-type", "author") != "author":
            continue
        name_element = contrib.find("name")
        if name_element is None:
            name_element = contrib.find("string-name")
        surname = _child_text(name_element, "surname")
        given = _child_text(name_element, "given-names")
        collab = _flat(contrib.find("collab"))
        name = " ".join(p for p in (given, surname) if p) if surname else (_flat(name_element) or collab)
        own = [_flat(a) for a in contrib.iterfind("aff")]
        linked = [affiliations.get(x.get("rid"), "") for x in contrib.iterfind("xref") if x.get("ref-type") == "aff"]
        affs = [a for a in own + linked if a]
        orcid_text = next((clean_text(c.text) for c in contrib.iterfind("contrib-id")
                           if (c.get("contrib-id-type") or "").lower() == "orcid"), None)
        raw_authors.append({"surname": surname or None, "given_names": given or None, "collab": collab or None,
                            "affiliations": affs, "orcid": orcid_text})
        if name:
            authors.append(AuthorData(name=name, affiliation="; ".join(affs) or None,
                                      orcid=normalize_orcid(orcid_text)))
    return authors, raw_authors


def _parse_pmc_article(article: etree._Element, location: str) -> PaperData:
    front = article.find("front")
    meta = front.find("article-meta") if front is not None else None
    if meta is None:
        raise ParseError("PMC article without front/article-meta", location=location, line=article.sourceline)
    journal_meta = front.find("journal-meta")
    if journal_meta is None:
        journal_meta = etree.Element("journal-meta")  # absent: as good as empty
    ids = _jats_ids(meta)
    pmcid = _pmcid(ids.get("pmcid") or ids.get("pmc"))
    if pmcid is None:
        raise ParseError("PMC article without a PMCID", location=location, line=meta.sourceline)
    pmid = ids.get("pmid") if _PMID.match(ids.get("pmid", "")) else None
    authors, raw_authors = _jats_authors(meta, front)
    # keyed by type: one without a type has no key (a None key would make raw unwritable as JSON)
    journal_ids = {
        kind: clean_text(j.text) for j in journal_meta.iterfind("journal-id") if (kind := j.get("journal-id-type"))
    }
    title_element = meta.find("title-group/article-title")
    epub = _jats_date(_jats_pub_date(meta, "epub"))
    ppub = _jats_date(_jats_pub_date(meta, "ppub"))
    collection = _jats_date(_jats_pub_date(meta, "collection"))
    published = epub or ppub or collection
    license_element = meta.find("permissions/license")
    license_url = None
    if license_element is not None:
        license_url = license_element.get(_XLINK + "href") or clean_text(
            license_element.findtext("{http://www.niso.org/schemas/ali/1.0/}license_ref")
        ) or None
    keywords = list(dict.fromkeys(k for k in (_flat(k) for k in meta.iterfind("kwd-group/kwd")) if k))
    raw = {
        "article_type": article.get("article-type"),
        "article_ids": ids,
        "article_title": _inner_text(title_element) if title_element is not None else None,
        "authors": raw_authors,
        "journal_ids": journal_ids,
        "iso_abbreviation": journal_ids.get("iso-abbrev"),
        "issn": [{"type": i.get("pub-type") or i.get("publication-format"), "value": clean_text(i.text)}
                 for i in journal_meta.iterfind("issn")],
        "publisher": _flat(journal_meta.find("publisher/publisher-name")) or None,
        "headings": [_flat(s) for s in meta.iterfind("article-categories/subj-group/subject")],
        "volume": _child_text(meta, "volume") or None,
        "issue": _child_text(meta, "issue") or None,
        "elocation_id": _child_text(meta, "elocation-id") or None,
        "epub": _iso(epub), "ppub": _iso(ppub), "collection": _iso(collection),
        "license": license_url,
        "related_articles": [
            {"type": r.get("related-article-type"), "ext_link_type": r.get("ext-link-type"),
             "href": r.get(_XLINK + "href")}
            for r in meta.iterfind("related-article")
        ],
        "published_precision": published.precision if published else None,
    }
    return PaperData(
        source=PMC_SOURCE,
        source_id=pmcid,
        title=_flat(title_element),
        abstract=_jats_abstract(meta),
        authors=authors,
        doi=normalize_doi(ids.get("doi")),
        pmid=pmid,
        pmcid=pmcid,
        venue=_flat(journal_meta.find("journal-title-group/journal-title")) or None,
        license=license_url,
        url_abs=f"https://pmc.ncbi.nlm.nih.gov/articles/{pmcid}/",
        published=published.value if published else None,
        work_type=(article.get("article-type") or "").lower() or None,
        publisher=raw["publisher"],
        issns=list(dict.fromkeys(i["value"] for i in raw["issn"] if i["value"])),
        keywords=keywords,
        raw=raw,
    )


# --- ESearch --------------------------------------------------------------------------------------


@dataclass(slots=True)
class SearchResult:
    """What ESearch says: the total, the first `retmax` PMIDs, and where the History server keeps the rest."""

    count: int
    ids: list[str]
    webenv: str | None
    query_key: str | None
    query_translation: str | None = None


def parse_esearch(content: bytes, location: str) -> SearchResult:
    """ESearch's JSON (retmode=json). An error document, top-level or in esearchresult, is a FeedError."""
    document = load_json(content, location, malformed="ESearch answer is not JSON")
    message = eutils_error_message(document)
    if message is not None:
        raise FeedError(f"E-utilities refused the search: {message}", url=location)
    result = document.get("esearchresult") if isinstance(document, dict) else None
    if not isinstance(result, dict):
        raise ParseError("ESearch answer without esearchresult", location=location)
    try:
        count = int(result["count"])
        ids = [str(i) for i in result.get("idlist", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise ParseError(f"ESearch answer without a valid count/idlist: {exc}", location=location) from exc
    return SearchResult(
        count=count,
        ids=ids,
        webenv=result.get("webenv") or None,
        query_key=str(result["querykey"]) if result.get("querykey") not in (None, "") else None,
        query_translation=result.get("querytranslation") or None,
    )


def eutils_error_message(document: object) -> str | None:
    """NCBI's reason in an E-utilities JSON answer ({"error": …} or esearchresult.ERROR), else None."""
    if not isinstance(document, dict):
        return None
    if document.get("error"):
        return clean_text(str(document["error"]))
    result = document.get("esearchresult")
    if isinstance(result, dict) and result.get("ERROR"):
        return clean_text(str(result["ERROR"]))
    return None


def _error_body_message(body: bytes) -> str | None:
    """The reason in an error response body, JSON or eFetchResult/eSearchResult XML; None if it has none."""
    text = body.strip()
    if text.startswith(b"{"):
        return eutils_error_message(json_or_none(text))
    if text.startswith(b"<"):
        try:
            root = parse_xml(text, "<response>")
        except ParseError:
            return None
        if root.tag in ("eFetchResult", "eSearchResult"):
            return clean_text(root.findtext("ERROR")) or None
    return None


def redact_api_key(url: str) -> str:
    """The URL with its api_key value masked, for messages and logs."""
    return _API_KEY_PARAM.sub("***", url)


def _message_of(exc: SourceError) -> str:
    """A SourceError's message without the URL its constructor put in front."""
    return str(exc).removeprefix(f"{exc.url}: ") if exc.url else str(exc)


# --- the client -----------------------------------------------------------------------------------


def pubmed_min_interval(api_key: str | None) -> float:
    """Seconds between requests NCBI allows: 3 a second without an API key, 10 with one."""
    return 1 / 10 if api_key else 1 / 3


class PubMedClient:
    """ESearch and EFetch through the shared PoliteClient, with NCBI's tool/email/api_key on every request.

    The PoliteClient's min_interval must honour NCBI's rate (pubmed_min_interval); a faster one is
    refused here, since NCBI blocks an address that keeps exceeding it."""

    def __init__(
        self,
        http: PoliteClient,
        base_url: str = BASE_URL,
        api_key: str | None = None,
        email: str | None = None,
        tool: str = "academichub",
    ):
        needed = pubmed_min_interval(api_key)
        if http.min_interval < needed:
            raise ValueError(
                f"PoliteClient min_interval {http.min_interval:g} s is below NCBI's limit of "
                f"{needed:.3g} s {'with' if api_key else 'without'} an API key"
            )
        if not tool or not re.fullmatch(r"\S+", tool):
            raise ValueError(f"tool must be a non-empty string without spaces, not {tool!r}")
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.email = email
        self.tool = tool

    def _get(self, endpoint: str, params: dict[str, str | int]) -> Fetched:
        params = dict(params, tool=self.tool)
        if self.email:
            params["email"] = self.email
        if self.api_key:
            params["api_key"] = self.api_key
        try:
            # Search results change from one minute to the next: never a conditional GET.
            return self.http.get(f"{self.base_url}/{endpoint}", params=params, conditional=False)
        except HTTPStatusError as exc:
            message = _error_body_message(exc.body)
            url = redact_api_key(exc.url or "")
            if message is not None:
                raise FeedError(f"E-utilities refused the request: {message}", url=url, status=exc.status) from exc
            if url == exc.url:
                raise
            raise HTTPStatusError(_message_of(exc), url=url, status=exc.status, body=exc.body) from exc
        except SourceError as exc:
            url = redact_api_key(exc.url or "")
            if url == exc.url:
                raise
            raise SourceError(_message_of(exc), url=url, status=exc.status) from exc

    def esearch(
        self,
        term: str,
        *,
        journal: str | None = None,
        mindate: date | None = None,
        maxdate: date | None = None,
        datetype: str = "edat",
        retmax: int = MAX_EFETCH_BATCH,
        usehistory: bool = True,
    ) -> SearchResult:
        """Search PubMed. `journal` adds `"<journal>"[ta]`; an open date end is filled with a far bound."""
        params: dict[str, str | int] = {
            "db": "pubmed",
            "term": search_term(term, journal),
            "retmode": "json",
            "retmax": _checked_range("retmax", retmax, 0, MAX_SEARCH_RESULTS),
        }
        if usehistory:
            params["usehistory"] = "y"
        if mindate is not None or maxdate is not None:
            if datetype not in DATETYPES:
                raise ValueError(f"datetype must be one of {', '.join(DATETYPES)}, not {datetype!r}")
            first, last = mindate or date(1000, 1, 1), maxdate or date(3000, 12, 31)
            if first > last:
                raise ValueError(f"mindate {mindate} is after maxdate {maxdate}")
            # NCBI accepts mindate and maxdate only together.
            params.update(datetype=datetype, mindate=first.strftime("%Y/%m/%d"), maxdate=last.strftime("%Y/%m/%d"))
        fetched = self._get("esearch.fcgi", params)
        return parse_esearch(fetched.content, redact_api_key(fetched.url))

    def efetch(
        self,
        *,
        ids: list[str] | None = None,
        webenv: str | None = None,
        query_key: str | None = None,
        retstart: int = 0,
        retmax: int = MAX_EFETCH_BATCH,
    ) -> ParsedBatch:
        """Records by PMID list or from the History server (webenv + query_key, retstart/retmax)."""
        params: dict[str, str | int] = {"db": "pubmed", "retmode": "xml"}
        if ids is not None:
            if webenv is not None or query_key is not None:
                raise ValueError("efetch takes ids or webenv/query_key, not both")
            pmids = [str(i).strip() for i in ids]
            bad = [i for i in pmids if not _PMID.match(i)]
            if bad:
                raise ValueError(f"not PMIDs: {', '.join(map(repr, bad[:5]))}")
            if not 0 < len(pmids) <= MAX_EFETCH_BATCH:
                raise ValueError(f"efetch takes 1 to {MAX_EFETCH_BATCH} ids at a time, not {len(pmids)}")
            params["id"] = ",".join(pmids)
        elif webenv and query_key:
            params.update(
                query_key=query_key, WebEnv=webenv,
                retstart=_checked_range("retstart", retstart, 0, MAX_SEARCH_RESULTS - 1),
                retmax=_checked_range("retmax", retmax, 1, MAX_EFETCH_BATCH),
            )
        else:
            raise ValueError("efetch needs ids, or both webenv and query_key")
        fetched = self._get("efetch.fcgi", params)
        batch = parse_efetch(fetched.content, redact_api_key(fetched.url))
        if ids is None:
            batch.start_index = retstart
        return batch

    def iter_search(
        self,
        term: str,
        *,
        journal: str | None = None,
        mindate: date | None = None,
        maxdate: date | None = None,
        datetype: str = "edat",
        batch_size: int = MAX_EFETCH_BATCH,
        limit: int | None = None,
    ) -> Iterator[ParsedBatch]:
        """Every record a search finds, batch by batch from the History server (one ESearch, then EFetch
        by retstart). More than PubMed's 10,000 is refused up front: narrow the dates, do not truncate."""
        _checked_range("batch_size", batch_size, 1, MAX_EFETCH_BATCH)
        search = self.esearch(term, journal=journal, mindate=mindate, maxdate=maxdate, datetype=datetype,
                              retmax=0, usehistory=True)
        wanted = search.count if limit is None else min(search.count, limit)
        if wanted > MAX_SEARCH_RESULTS:
            raise FeedError(
                f"the search {search_term(term, journal)!r} finds {search.count} records; PubMed hands out only"
                f" the first {MAX_SEARCH_RESULTS} - narrow the date range"
            )
        if wanted and not (search.webenv and search.query_key):
            raise FeedError("ESearch gave no WebEnv/query_key for a history search")
        for retstart in range(0, wanted, batch_size):
            batch = self.efetch(webenv=search.webenv, query_key=search.query_key, retstart=retstart,
                                retmax=min(batch_size, wanted - retstart))
            batch.total_results = search.count
            yield batch


def search_term(term: str, journal: str | None) -> str:
    """The term with a journal filter ANDed on: `(term) AND "Gut"[ta]`."""
    term = (term or "").strip()
    if journal is None:
        if not term:
            raise ValueError("an ESearch needs a term or a journal")
        return term
    journal = clean_text(journal)
    if not journal or '"' in journal:
        raise ValueError(f"bad journal name {journal!r}")
    journal_filter = f'"{journal}"[ta]'
    return f"({term}) AND {journal_filter}" if term else journal_filter


def _checked_range(name: str, value: int, low: int, high: int) -> int:
    if not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be {low}..{high}, not {value!r}")
    return value


# ----------------------------------------------------------------------------- the pubmed kinds

# MEDLINE's curated record: the structured abstract of reference; PMC's full-text records are the same family.
PUBMED_FAMILY = MergeFamily("pubmed", default_rank=6, ranks={
    "title": 6, "abstract": 7, "authors": 6, "venue": 6, "published_on": 6, "work_type": 6, "url_abs": 4,
})


def _api_key(settings) -> str | None:
    return settings.pubmed_api_key.get_secret_value() if settings.pubmed_api_key else None


def _check(params: dict) -> None:
    if not (params.get("journal") or params.get("term")):
        raise ConfigError("a pubmed source needs journal=… and/or term=…")


def _pages(fetch: Fetch) -> Iterator[Page]:
    settings, params = fetch.settings, fetch.params
    client = PubMedClient(fetch.http, settings.pubmed_url, api_key=_api_key(settings), email=settings.contact_email)
    yield from client.iter_search(params.get("term") or "", journal=params.get("journal"), mindate=fetch.start, maxdate=fetch.end)


SOURCE_KINDS = (
    SourceKind(
        name=SOURCE,
        label="PubMed",
        family=PUBMED_FAMILY,
        file=FileFormat(name=SOURCE, syntax="xml", sniff=xml_root("PubmedArticleSet"), description="PubMed XML",
                        parse=parse_efetch),
        pages=_pages,
        params=(
            Param("journal", "a journal as PubMed abbreviates it, e.g. Nature or Soc Justice"),
            Param("term", "a PubMed search, e.g. crispr[tiab]"),
        ),
        check=_check,
        min_interval=lambda settings: pubmed_min_interval(_api_key(settings)),
    ),
    SourceKind(
        name=PMC_SOURCE,
        label="PubMed Central",
        family=PUBMED_FAMILY,
        file=FileFormat(name=PMC_SOURCE, syntax="xml", sniff=xml_root("pmc-articleset"), description="PMC XML",
                        parse=parse_pmc),
    ),
)
