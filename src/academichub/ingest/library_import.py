"""Reference libraries in: BibTeX, RIS, CSL-JSON and JSON lines of PaperData-like dicts become
PaperData (source "library"), so a person's own papers can seed a radar and sit in the store as
one record per work beside what the daily sources bring.

Real libraries are messy: Mendeley writes arXiv ids into `eprint` without a prefix and PMIDs into
`eprint`, Zotero escapes an abstract's `$x$` as `\\$x\\$`, astronomers write `journal = {\\apj}`,
exports carry the same paper twice and entries with unbalanced braces. So: one broken entry is
skipped and reported with its line, never the file; duplicates inside a file (same key and title,
DOI, arXiv id, PMID, or the store's own fuzzy rule) become one record; every record carries
`raw["library_key"]` = "<file name>:<key>", the only identity of an entry with no DOI, arXiv id,
PMID or URL."""

from __future__ import annotations

import hashlib
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from ..cleantext import clean_text
from ..errors import ParseError
from ..model import AuthorData, PaperData
from ..names import split_author_list, tex_to_unicode
from ..sources.arxiv_ids import parse_arxiv_id
from ..sources.jats import markup_to_text
from ..sources.jsonsafe import as_list, as_str, load_json
from . import merge
from .pipeline import IngestSummary, store_records

SOURCE = "library"
FORMATS = ("bibtex", "ris", "csl-json", "jsonl")


@dataclass(slots=True)
class LibraryImport:
    """What one library file held: its papers (duplicates merged), and why entries were left out."""

    papers: list[PaperData]
    skipped: list[str]  # "<file>:<line>: <why>", one per entry left out
    format: str  # bibtex | ris | csl-json | jsonl
    entries: int = 0  # entries found in the file, duplicates and skipped ones included
    notes: list[str] = field(default_factory=list)  # kept, but worth saying (a key used by two works)

    @property
    def merged(self) -> int:
        """Entries folded into an earlier entry of the same work."""
        return self.entries - len(self.skipped) - len(self.papers)

    @property
    def unidentified(self) -> list[PaperData]:
        """Papers with no DOI, arXiv id, PMID, PMCID or URL: only raw["library_key"] names them."""
        return [p for p in self.papers if all(k[0] == "library" for k in merge.record_identifiers(p))]


# ----------------------------------------------------------------------------- entry points


def read_library(path: Path) -> LibraryImport:
    """Parse a library file; the format is told by content, not by the file's name."""
    path = Path(path)
    location = str(path)
    if path.is_dir():
        raise ParseError("is a directory, not a file", location=location)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror}", location=location) from exc
    return parse_library(data, location)


def parse_library(data: bytes, location: str) -> LibraryImport:
    """Parse a library's bytes; `location` names it in errors, its last part in the records' keys."""
    text = _decode(data, location)
    fmt = detect_library_format(text, location)
    reader = {"bibtex": _read_bibtex, "ris": _read_ris, "csl-json": _read_csl_json, "jsonl": _read_jsonl}[fmt]
    file_name = Path(location).name
    drafts, skipped, entries = reader(text, file_name, location)
    notes: list[str] = []
    papers = _merge_duplicates(drafts, file_name, notes)
    return LibraryImport(papers=papers, skipped=skipped, format=fmt, entries=entries, notes=notes)


def import_library(engine: Engine, path: Path) -> tuple[IngestSummary, LibraryImport]:
    """Read a library and merge its papers into the store (one transaction)."""
    library = read_library(path)
    return store_records(engine, library.papers), library


def imported_paper_ids(conn: Connection, papers: Iterable[PaperData]) -> list[int]:
    """Store ids of the papers an import wrote, in library order (one per work); papers the store
    could not keep (no identifier) have none."""
    from ..store.schema import source_records

    wanted = [p.source_id for p in papers if p.source == SOURCE]
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 900):
        chunk = wanted[start : start + 900]
        rows = conn.execute(
            select(source_records.c.source_id, source_records.c.paper_id).where(
                source_records.c.source == SOURCE, source_records.c.source_id.in_(chunk)
            )
        )
        found.update({source_id: paper_id for source_id, paper_id in rows})
    return list(dict.fromkeys(found[s] for s in wanted if s in found))


# Windows tools export UTF-16 (or UTF-32) with a byte order mark; its zero bytes are not binary.
_UNICODE_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"),
)


def _decode(data: bytes, location: str) -> str:
    for bom, encoding in _UNICODE_BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                raise ParseError(f"not valid {encoding.upper()} at byte {exc.start + len(bom)}", location=location) from exc
    if data.startswith((b"%PDF", b"PK\x03\x04", b"\x1f\x8b")) or b"\x00" in data[:512]:
        raise ParseError("unsupported file type: binary data, not a reference library", location=location, line=1)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # old BibTeX files are often Windows-1252


_BIBTEX_START = re.compile(r"^\s*@[A-Za-z]+\s*[{(]", re.M)
_RIS_START = re.compile(r"^\s*TY  - ", re.M)


def detect_library_format(text: str, location: str) -> str:
    """bibtex | ris | csl-json | jsonl, from the content; ParseError names what it is not."""
    head = text.lstrip()
    if not head:
        raise ParseError("empty file", location=location, line=1)
    if head.startswith("["):
        return "csl-json"
    if head.startswith("{"):
        return "jsonl"
    sample = text[:65536]
    if _RIS_START.match(head[:64]) or (not _BIBTEX_START.search(sample) and _RIS_START.search(sample)):
        return "ris"
    if _BIBTEX_START.search(sample):
        return "bibtex"
    raise ParseError(
        "unsupported library format: expected BibTeX, RIS, CSL-JSON or JSON lines", location=location, line=1
    )


# ----------------------------------------------------------------------------- TeX and markup

# Placeholders for characters that TeX escaped and that must not be read as TeX again.
_BACKSLASH, _LBRACE, _RBRACE, _DOLLAR, _TILDE = "\ue000", "\ue001", "\ue002", "\ue003", "\ue004"
_RESTORE = str.maketrans({_BACKSLASH: "\\", _LBRACE: "{", _RBRACE: "}", _DOLLAR: "$", _TILDE: "~"})
_LITERALS = re.compile(r"\{\\textbackslash\}|\\textbackslash(?:\{\}|(?![A-Za-z]))|\$\\backslash\$|\\[{}$]")
_MENDELEY_NEWLINE = re.compile(r"\$\\backslash\$n")  # Mendeley's export of a newline in an abstract
# Text-mode symbols, done with a table: pylatexenc drops several of them (\textless) and is slow.
_SYMBOLS = {
    "%": "%", "&": "&", "#": "#", "_": "_", ",": " ", " ": " ", "-": "", "/": "",
    "textless": "<", "textgreater": ">", "textendash": "–", "textemdash": "—", "textcopyright": "©",
    "copyright": "©", "textregistered": "®", "texttrademark": "™", "textasciitilde": _TILDE,
    "textasciicircum": "^", "textbar": "|", "textperiodcentered": "·", "texttimes": "×", "textdegree": "°",
    "textmu": "µ", "textpm": "±", "ldots": "…", "dots": "…", "textellipsis": "…", "textquoteright": "’",
    "textquoteleft": "‘", "textquotedblleft": "“", "textquotedblright": "”", "textquotesingle": "'",
    "textasciigrave": "`", "textasciiacute": "´", "textunderscore": "_", "textsection": "§", "S": "§",
    "textdollar": _DOLLAR, "textbraceleft": _LBRACE, "textbraceright": _RBRACE,
}
_SYMBOL = re.compile(
    r"\\(?:(?P<char>[%&#_, \-/])|(?P<word>"
    + "|".join(sorted((k for k in _SYMBOLS if len(k) > 1), key=len, reverse=True))
    + r")(?![A-Za-z])(?:\{\}|[ \t])?)"
)
_FORMATTING = re.compile(
    r"\\(?:textit|textbf|textrm|textsf|texttt|textsc|textnormal|textup|textsl|emph|underline|mbox|"
    r"textsuperscript|textsubscript|url|href\{[^{}]*\})\s*(?=\{)|\\(?:em|it|bf|rm|sc|sl|tt|sf|bfseries|itshape)\b\s*"
)
_MATH = re.compile(r"(\$\$[^$]+\$\$|\$[^$]+\$)")
_DASHES = (("---", "—"), ("--", "–"))
_HTML_TAG = re.compile(r"</?(?:p|i|b|em|strong|sup|sub|br|span|title|jats:[a-z]+|sc|u|div|h\d)\b[^<>]*>", re.I)


def tex_text(value: str | None) -> str:
    """A BibTeX title or abstract as plain Unicode text; $math$ is kept exactly as written.

    Escaped characters (\\$, \\{, {\\textbackslash}) stay literal: Zotero writes an abstract's
    `$n\\times n$` as `\\$n{\\textbackslash}times n\\$`, which this turns back into `$n\\times n$`."""
    if not value:
        return ""
    if not any(c in value for c in "\\{}$~") and "--" not in value:
        return clean_text(value)
    text = _MENDELEY_NEWLINE.sub(" ", value)
    text = _LITERALS.sub(_literal, text)
    pieces = []
    for i, piece in enumerate(_MATH.split(text)):
        pieces.append(piece if i % 2 else _text_mode(piece))
    return clean_text("".join(pieces).translate(_RESTORE))


_ESCAPED = {"\\{": _LBRACE, "\\}": _RBRACE, "\\$": _DOLLAR}


def _literal(match: re.Match) -> str:
    return _ESCAPED.get(match.group(0), _BACKSLASH)  # the rest are spellings of a literal backslash


def _text_mode(piece: str) -> str:
    if not piece.strip():
        return piece
    text = _SYMBOL.sub(lambda m: _SYMBOLS[m.group("char") or m.group("word")], piece)
    text = _FORMATTING.sub("", text)
    text = text.replace("~", " ")
    for dashes, replacement in _DASHES:
        text = text.replace(dashes, replacement)
    lead = " " if text[:1].isspace() else ""
    trail = " " if text[-1:].isspace() else ""
    if "\\" in text or "{" in text:
        text = tex_to_unicode(text)
    text = text.replace("{", "").replace("}", "").strip()
    return f"{lead}{text}{trail}" if text else lead or trail


def _title(value: str | None, *, tex: bool) -> str:
    value = value or ""
    if _HTML_TAG.search(value):
        value = markup_to_text(value, drop_abstract_heading=False)
    return tex_text(value) if tex else clean_text(value)


_ABSTRACT_WORD = re.compile(r"^(?:Abstract|ABSTRACT)\s*[:.]?\s+(?=[A-Z])")


def _abstract(value: str | None, *, tex: bool) -> str:
    """Clean abstract text; a leading "Abstract" (Crossref's JATS heading, flattened) is dropped."""
    value = value or ""
    if _HTML_TAG.search(value) or (not tex and "&" in value):
        value = markup_to_text(value)
    text = tex_text(value) if tex else clean_text(value)
    return _ABSTRACT_WORD.sub("", text)


# ----------------------------------------------------------------------------- identifiers and dates

_DOI = re.compile(r"10\.\d{4,9}/[^\s\"<>{}]+")
_DOI_URL = re.compile(r"^https?://(?:dx\.)?doi\.org/", re.I)
_ARXIV_URL = re.compile(r"arxiv\.org/(?:abs|pdf)/([^\s?#]+)", re.I)
_ARXIV_MENTION = re.compile(
    r"arxiv[^0-9]{0,24}?(\d{4}\.\d{4,5}(?:v\d+)?|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?)", re.I
)
_PUBMED_URL = re.compile(r"(?:ncbi\.nlm\.nih\.gov/pubmed/|pubmed\.ncbi\.nlm\.nih\.gov/)(\d{1,9})", re.I)
_PMID = re.compile(r"^\s*(?:pmid:?\s*)?(\d{1,9})\b", re.I)
_PMCID = re.compile(r"\bPMC\d{3,9}\b", re.I)
_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d)(?!\d)")
_ISO_DATE = re.compile(r"^\s*(\d{4})(?:[-/](\d{1,2})(?:[-/](\d{1,2}))?)?")
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}


def _plain(value: str | None) -> str:
    """An identifier-like field without TeX escapes or braces (`10.1016/j.x{\\_}1` -> `10.1016/j.x_1`)."""
    if not value:
        return ""
    value = re.sub(r"\\([_%&#~])(?:\{\})?", r"\1", value)
    value = value.replace("{\\textasciitilde}", "~").replace("\\textasciitilde", "~")
    return value.replace("{", "").replace("}", "").strip()


def _doi(*values: str | None) -> str | None:
    for value in values:
        value = _plain(value)
        if not value:
            continue
        match = _DOI.search(value)
        if match:
            return merge.norm_doi(match.group(0).rstrip(".,;)"))
    return None


def _doi_from_url(url: str | None) -> str | None:
    return _doi(url) if url and _DOI_URL.match(url) else None


def _arxiv(value: str | None, primary_class: str | None = None) -> str | None:
    """A versionless arXiv id from an eprint/arxivId value; Mendeley's bare "0309582" needs the
    primary class to become "cond-mat/0309582"."""
    value = _plain(value)
    if not value:
        return None
    value = re.sub(r"^arxiv:\s*", "", value, flags=re.I)
    if re.fullmatch(r"\d{7}(?:v\d+)?", value):
        archive = re.sub(r"^arxiv:\s*", "", _plain(primary_class), flags=re.I).split(",")[0].split(".")[0].strip()
        if not re.fullmatch(r"[a-z][a-z\-]*", archive):
            return None
        value = f"{archive}/{value}"
    try:
        return parse_arxiv_id(value)[0]
    except ParseError:
        return None


def _arxiv_from_url(url: str | None) -> str | None:
    match = _ARXIV_URL.search(url or "")
    return _arxiv(match.group(1).removesuffix(".pdf")) if match else None


def _arxiv_mentioned(*values: str | None) -> str | None:
    for value in values:
        match = _ARXIV_MENTION.search(_plain(value))
        if match:
            found = _arxiv(match.group(1))
            if found:
                return found
    return None


def _pmid(value: str | None) -> str | None:
    match = _PMID.match(_plain(value))
    return match.group(1) if match else None


def _pmcid(*values: str | None) -> str | None:
    for value in values:
        match = _PMCID.search(_plain(value))
        if match:
            return match.group(0).upper()
    return None


def _url(value: str | None) -> str | None:
    """The first web address of a url field (Mendeley puts several, space-separated)."""
    value = _plain(value)
    if not value:
        return None
    tokens = value.split()
    links = [t for t in tokens if t.lower().startswith(("http://", "https://"))]
    if not links:
        return None
    if len(links) == len(tokens):
        return links[0]
    return value.replace(" ", "%20") if value.lower().startswith(("http://", "https://")) else links[0]


def _month(value: str | None) -> int | None:
    value = _plain(value).lower()
    if value.isascii() and value.isdigit() and len(value) <= 2:  # "²".isdigit() too, and int() refuses it
        number = int(value)
        return number if 1 <= number <= 12 else None
    return _MONTHS.get(value[:3])


def _published(year: str | None, month: str | None = None, iso: str | None = None) -> date | None:
    """biblatex `date` (2015-12-22, 2015-11) first, else year and month; a missing month is January."""
    parts: list[int] = []
    match = _ISO_DATE.match(_plain(iso)) if iso else None
    if match:
        parts = [int(p) for p in match.groups() if p]
    else:
        found = _YEAR.search(_plain(year))
        if found:
            parts = [int(found.group(1))]
            if (number := _month(month)) is not None:
                parts.append(number)
    while parts:
        try:
            return date(*parts, *[1] * (3 - len(parts)))
        except ValueError:
            parts.pop()
    return None


def _keywords(value: str | list | None, *, tex: bool) -> list[str]:
    items = value if isinstance(value, list) else re.split(r"[;,]", value if isinstance(value, str) else "")
    cleaned = (tex_text(str(k)) if tex else clean_text(str(k)) for k in items)
    return list(dict.fromkeys(k[:255] for k in cleaned if k))


def _finish(paper: PaperData, file_name: str, key: str, raw: dict) -> PaperData:
    """What every format shares: an arXiv DOI names the arXiv id; the library key is kept."""
    if paper.doi and paper.doi.startswith("10.48550/arxiv."):
        paper.arxiv_id = paper.arxiv_id or _arxiv(paper.doi[len("10.48550/arxiv."):])
        paper.doi = None
    paper.raw = {"library_key": f"{file_name}:{key}", **raw}
    return paper


def _fallback_key(title: str, published: date | None) -> str:
    """A stable key for an entry that has none (an empty BibTeX key, a RIS record without ID)."""
    digest = hashlib.blake2b(f"{merge.title_key(title)}|{published.year if published else ''}".encode(), digest_size=5)
    return f"~{digest.hexdigest()}"


# ----------------------------------------------------------------------------- BibTeX

# aas_macros.sty: astronomy libraries (ADS exports) name journals by these macros.
_AAS_JOURNALS = {
    "aj": "The Astronomical Journal", "actaa": "Acta Astronomica", "araa": "Annual Review of Astronomy and Astrophysics",
    "apj": "The Astrophysical Journal", "apjl": "The Astrophysical Journal Letters",
    "apjs": "The Astrophysical Journal Supplement Series", "ao": "Applied Optics",
    "apss": "Astrophysics and Space Science", "aap": "Astronomy & Astrophysics", "aapr": "The Astronomy and Astrophysics Review",
    "aaps": "Astronomy and Astrophysics Supplement Series", "azh": "Astronomicheskii Zhurnal",
    "baas": "Bulletin of the American Astronomical Society", "icarus": "Icarus", "jcap": "Journal of Cosmology and Astroparticle Physics",
    "jrasc": "Journal of the Royal Astronomical Society of Canada", "memras": "Memoirs of the Royal Astronomical Society",
    "mnras": "Monthly Notices of the Royal Astronomical Society", "na": "New Astronomy", "nar": "New Astronomy Reviews",
    "pra": "Physical Review A", "prb": "Physical Review B", "prc": "Physical Review C", "prd": "Physical Review D",
    "pre": "Physical Review E", "prl": "Physical Review Letters", "pasa": "Publications of the Astronomical Society of Australia",
    "pasp": "Publications of the Astronomical Society of the Pacific", "pasj": "Publications of the Astronomical Society of Japan",
    "physrep": "Physics Reports", "qjras": "Quarterly Journal of the Royal Astronomical Society", "skytel": "Sky and Telescope",
    "solphys": "Solar Physics", "sovast": "Soviet Astronomy", "ssr": "Space Science Reviews", "zap": "Zeitschrift für Astrophysik",
    "nat": "Nature", "sci": "Science", "iaucirc": "IAU Circulars", "aplett": "Astrophysics Letters",
    "apspr": "Astrophysics Space Physics Research", "bain": "Bulletin of the Astronomical Institutes of the Netherlands",
    "fcp": "Fundamentals of Cosmic Physics", "gca": "Geochimica et Cosmochimica Acta", "grl": "Geophysical Research Letters",
    "jcp": "The Journal of Chemical Physics", "jgr": "Journal of Geophysical Research", "jqsrt": "Journal of Quantitative Spectroscopy and Radiative Transfer",
    "memsai": "Memorie della Società Astronomica Italiana", "nphysa": "Nuclear Physics A", "planss": "Planetary and Space Science",
    "procspie": "Proceedings of the SPIE",
}
_AAS_MACRO = re.compile(r"^\s*\\([a-z]+)\s*$")
_WORK_TYPES = {
    "article": "journal-article", "inproceedings": "proceedings-article", "conference": "proceedings-article",
    "incollection": "book-chapter", "inbook": "book-chapter", "book": "book", "phdthesis": "dissertation",
    "mastersthesis": "dissertation", "thesis": "dissertation", "techreport": "report", "report": "report",
}
_PREPRINT_VENUE = re.compile(r"^\s*(?:e-?print\s+)?arxiv\b|^\s*arxiv\s*(?:e-prints|preprint)", re.I)
_HEADER = re.compile(r"@\s*([A-Za-z]+)\s*[{(]\s*([^,\s]*)")


def _read_bibtex(text: str, file_name: str, location: str) -> tuple[list[tuple[int, PaperData]], list[str], int]:
    from bibtexparser import model as bib
    from bibtexparser.middlewares import RemoveEnclosingMiddleware

    unenclose = RemoveEnclosingMiddleware(allow_inplace_modification=True)
    lines = _LineIndex(text)
    blocks, strings, skipped = _bibtex_blocks(text, file_name)
    drafts: list[tuple[int, PaperData]] = []
    entries = len(skipped)
    for block, offset in blocks:
        if isinstance(block, (bib.DuplicateBlockKeyBlock, bib.DuplicateFieldKeyBlock)):
            entry = block.ignore_error_block  # a repeated key or field is no reason to lose the entry
        elif isinstance(block, bib.Entry):
            entry = block
        elif isinstance(block, bib.ParsingFailedBlock):
            entries += 1
            line = lines.line_of(block.raw, block.start_line + offset)
            skipped.append(f"{file_name}:{line}: {_bibtex_what(block.raw)}: {_bibtex_error(block)}, skipped")
            continue
        else:
            continue  # @string, @preamble, @comment, text between entries
        entries += 1
        line = lines.line_of(entry.raw, entry.start_line + offset)
        for item in entry.fields:
            if isinstance(item.value, str) and not item.value.startswith(("{", '"')):
                item.value = strings.get(item.value.strip().lower(), item.value)
        unenclose.transform_entry(entry, None)
        fields = {f.key.lower(): f.value for f in entry.fields if isinstance(f.value, str)}
        key = entry.key.strip()
        oversized = next((name for name, value in fields.items() if len(value) > MAX_FIELD_CHARS), None)
        paper = (
            f"field {oversized!r} is {len(fields[oversized]):,} characters long (at most {MAX_FIELD_CHARS:,})"
            if oversized
            else _bibtex_paper(entry.entry_type.lower(), key, fields, file_name)
        )
        if isinstance(paper, str):
            skipped.append(f"{file_name}:{line}: @{entry.entry_type}{{{key}}}: {paper}, skipped")
            continue
        drafts.append((line, paper))
    return drafts, skipped, entries


# No real title or abstract comes near this; a field that does is damage, and TeX conversion
# (pylatexenc, ~60 µs a macro) would spend minutes on it: the entry is skipped and named.
MAX_FIELD_CHARS = 100_000

_BLOCK_START = re.compile(r"^(?=[ \t]*@)", re.M)


def _bibtex_blocks(text: str, file_name: str) -> tuple[list[tuple[Any, int]], dict[str, str], list[str]]:
    """bibtexparser's blocks with the line offset to add to their start_line, the @string values,
    and what could not be parsed at all. Should the parser itself fail on the file, each entry is
    parsed on its own, so the failure costs that entry only."""
    import bibtexparser

    try:
        with _quiet_bibtexparser():
            library = bibtexparser.parse_string(text, parse_stack=[])  # middlewares run per entry
        pieces = [(library, 0)]
        skipped: list[str] = []
    except Exception:
        pieces, skipped, offset = [], [], 0
        for chunk in _BLOCK_START.split(text):
            try:
                with _quiet_bibtexparser():
                    pieces.append((bibtexparser.parse_string(chunk, parse_stack=[]), offset))
            except Exception as exc:
                skipped.append(f"{file_name}:{offset + 1}: {_bibtex_what(chunk)}: not readable ({exc}), skipped")
            offset += chunk.count("\n")
    strings = {k.lower(): s.value for library, _ in pieces for k, s in library.strings_dict.items()}
    blocks = [(block, offset) for library, offset in pieces for block in library.blocks]
    return blocks, strings, skipped


@contextmanager
def _quiet_bibtexparser():
    """bibtexparser logs each aborted block; this module reports them itself, with file and line."""
    logger = logging.getLogger("bibtexparser")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _bibtex_what(raw: str) -> str:
    header = _HEADER.match(raw.lstrip())
    return f"@{header.group(1)}{{{header.group(2)}}}" if header else "entry"


def _bibtex_error(block) -> str:
    reason = str(getattr(block.error, "abort_reason", "") or block.error or "")
    if "Unexpected block start" in reason or "Unexpected end of file" in reason or "closing" in reason:
        return "unbalanced braces or quotes (it runs into what follows)"
    return reason.split("\n")[0].strip() or "not valid BibTeX"


def _bibtex_paper(entry_type: str, key: str, f: dict[str, str], file_name: str) -> PaperData | str:
    title = _title(f.get("title"), tex=True)
    if not title or title.lower() == "no title":  # Mendeley writes "{No Title}" for a missing title
        return "no title"
    url = _url(f.get("url"))
    eprint_type = _plain(f.get("archiveprefix") or f.get("eprinttype")).lower()
    primary = f.get("primaryclass")
    arxiv_id = (
        _arxiv(f.get("arxivid"), primary)
        or (_arxiv(f.get("eprint"), primary) if eprint_type in ("arxiv", "") else None)
        or _arxiv_from_url(url)
        or _arxiv_mentioned(f.get("journal"), f.get("journaltitle"), f.get("note"), f.get("howpublished"))
    )
    pmid = _pmid(f.get("pmid")) or (_pmid(f.get("eprint")) if eprint_type in ("pmid", "pubmed") else None)
    if pmid is None and url and (match := _PUBMED_URL.search(url)):
        pmid = match.group(1)
    venue_raw = f.get("journal") or f.get("journaltitle") or f.get("booktitle") or ""
    macro = _AAS_MACRO.match(venue_raw)
    venue = _AAS_JOURNALS.get(macro.group(1)) if macro else tex_text(venue_raw)
    work_type = _WORK_TYPES.get(entry_type)
    if (venue and _PREPRINT_VENUE.match(venue)) or (arxiv_id and not venue):
        venue, work_type = None, "preprint"
    if _plain(f.get("pubstate")).lower() == "preprint":  # biblatex: a preprint of any server
        work_type = "preprint"
    published = _published(f.get("year"), f.get("month"), f.get("date"))
    paper = PaperData(
        source=SOURCE,
        source_id=f"{file_name}:{key}",
        title=title,
        abstract=_abstract(f.get("abstract"), tex=True),
        authors=_bibtex_authors(f.get("author", "")),
        arxiv_id=arxiv_id,
        doi=_doi(f.get("doi")) or _doi_from_url(url),
        pmid=pmid,
        pmcid=_pmcid(f.get("pmcid"), f.get("pmc")),
        venue=venue or None,
        url_abs=url,
        published=published,
        work_type=work_type,
        publisher=tex_text(f.get("publisher")) or None,
        issns=[m.group(0).upper() for m in re.finditer(r"\b\d{4}-\d{3}[\dXx]\b", f.get("issn", ""))][:2],
        keywords=_keywords(f.get("keywords"), tex=True),
    )
    return _finish(paper, file_name, key, {"type": entry_type})


def _bibtex_authors(value: str) -> list[AuthorData]:
    """"Last, First and Last2, First2" -> AuthorData in order, "First von Last Jr." each, Unicode."""
    from bibtexparser.middlewares.names import parse_single_name_into_parts, split_multiple_persons_names

    authors = []
    for name in split_multiple_persons_names(value.strip()):
        name = " ".join(name.split())
        if not name or name.lower() == "others":
            continue
        try:
            parts = parse_single_name_into_parts(name, strict=False)
        except Exception:  # an odd name is kept whole, never a reason to drop the entry
            words = [name]
        else:
            first = [w for w in parts.first if "\\{" not in w]  # Mendeley's "{\{}fname{\}}" placeholder
            words = [*first, *parts.von, *parts.last, *parts.jr]
        display = " ".join(filter(None, (_name_part(w) for w in words)))
        if display:
            authors.append(AuthorData(name=display))
    return authors


def _name_part(word: str) -> str:
    """One word of a name: TeX accents to Unicode; "--" in "Dessauges--Zavadsky" is a hyphen."""
    return tex_to_unicode(word.replace("~", " ")).replace("--", "-").strip()


class _LineIndex:
    """1-based line numbers of blocks; bibtexparser's start_line is off by one for some blocks."""

    def __init__(self, text: str):
        self.text = text
        self.starts = [0]
        self.starts.extend(m.end() for m in re.finditer("\n", text))

    def line_of(self, raw: str, hint: int) -> int:
        head = raw.lstrip()[:60]
        for line in (hint + 1, hint, hint + 2):
            if 1 <= line <= len(self.starts):
                start = self.starts[line - 1]
                if self.text[start : start + 200].lstrip().startswith(head):
                    return line
        return hint + 1


# ----------------------------------------------------------------------------- RIS

_RIS_TAG = re.compile(r"^([A-Z][A-Z0-9])  -(?: (.*))?$")
_RIS_TYPES = {
    "JOUR": "journal-article", "JFULL": "journal-article", "EJOUR": "journal-article", "MGZN": "journal-article",
    "CONF": "proceedings-article", "CPAPER": "proceedings-article", "BOOK": "book", "EBOOK": "book",
    "CHAP": "book-chapter", "ECHAP": "book-chapter", "THES": "dissertation", "RPRT": "report",
    "UNPB": "preprint",  # "unpublished work": what export/formats.py writes for a preprint
}


def _read_ris(text: str, file_name: str, location: str) -> tuple[list[tuple[int, PaperData]], list[str], int]:
    """Records are cut out by hand (TY … ER) so one without its ER is reported, not silently lost
    (rispy drops it), and each is handed to rispy for the tag mapping."""
    import rispy

    drafts: list[tuple[int, PaperData]] = []
    skipped: list[str] = []
    entries = 0
    record: list[str] = []
    start = 0

    def close(lineno: int, complete: bool) -> None:
        nonlocal entries
        entries += 1
        if not complete:
            skipped.append(f"{file_name}:{start}: RIS record has no end (ER) before line {lineno}, skipped")
            return
        try:
            parsed = rispy.loads("\n".join(record) + "\n")
        except Exception as exc:  # rispy raises plain exceptions on odd tags
            skipped.append(f"{file_name}:{start}: RIS record not readable ({exc}), skipped")
            return
        paper = _ris_paper(parsed[0], file_name) if parsed else "empty record"
        if isinstance(paper, str):
            skipped.append(f"{file_name}:{start}: {paper}, skipped")
        else:
            drafts.append((start, paper))

    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.rstrip().lstrip("\ufeff")
        tag = _RIS_TAG.match(line)
        if tag and tag.group(1) == "TY":
            if record:
                close(lineno, complete=False)
            record, start = [line], lineno
        elif tag and tag.group(1) == "ER":
            if record:
                record.append("ER  - ")
                close(lineno, complete=True)
            record = []
        elif record:
            record.append(line)
    if record:
        close(len(text.splitlines()) + 1, complete=False)
    return drafts, skipped, entries


def _ris_paper(r: dict[str, Any], file_name: str) -> PaperData | str:
    title = _title(r.get("title") or r.get("primary_title") or r.get("translated_title"), tex=False)
    if not title:
        return "no title"
    urls = [u for u in r.get("urls", []) if isinstance(u, str)]
    url = next((u.strip() for u in urls if u.strip().lower().startswith(("http://", "https://"))), None)
    doi = _doi(r.get("doi")) or next((d for u in urls if (d := _doi_from_url(u))), None)
    published = _published(r.get("year") or r.get("publication_year"), iso=r.get("date") or r.get("year") or r.get("publication_year"))
    ref_type = str(r.get("type_of_reference", "")).upper()
    venue = next(
        (clean_text(v) for k in ("journal_name", "secondary_title", "alternate_title3", "alternate_title1")
         if ref_type not in ("BOOK", "EBOOK") and (v := r.get(k))),
        None,
    )
    notes = " ".join(str(n) for n in r.get("notes", []) if n)
    key = clean_text(str(r.get("id") or "")) or doi or _fallback_key(title, published)
    paper = PaperData(
        source=SOURCE,
        source_id=f"{file_name}:{key}",
        title=title,
        abstract=_abstract(r.get("abstract") or r.get("notes_abstract"), tex=False),
        authors=[AuthorData(name=n) for a in [*r.get("authors", []), *r.get("first_authors", [])] if (n := _person(a))],
        arxiv_id=next((a for u in urls if (a := _arxiv_from_url(u))), None) or _arxiv_mentioned(venue, notes),
        doi=doi,
        pmid=next((m.group(1) for u in urls if (m := _PUBMED_URL.search(u))), None),
        pmcid=_pmcid(notes, r.get("custom2")),
        venue=None if venue and _PREPRINT_VENUE.match(venue) else venue,
        url_abs=url,
        published=published,
        work_type=_RIS_TYPES.get(ref_type),
        publisher=clean_text(r.get("publisher")) or None,
        issns=[m.group(0).upper() for m in re.finditer(r"\b\d{4}-\d{3}[\dXx]\b", str(r.get("issn", "")))][:2],
        keywords=_keywords(r.get("keywords", []), tex=False),
    )
    return _finish(paper, file_name, key, {"type": ref_type})


def _person(value: Any) -> str:
    """"Family, Given" (RIS) or a CSL name -> "Given Family"."""
    if isinstance(value, dict):
        parts = [value.get("given"), value.get("non-dropping-particle"), value.get("family"), value.get("suffix")]
        name = " ".join(clean_text(str(p)) for p in parts if p) or clean_text(str(value.get("literal") or value.get("name") or ""))
        return name
    text = clean_text(str(value or ""))
    if text.count(",") == 1:
        family, given = (s.strip() for s in text.split(","))
        return f"{given} {family}".strip()
    return text


# ----------------------------------------------------------------------------- CSL-JSON and JSON lines

_CSL_TYPES = {
    "article-journal": "journal-article", "paper-conference": "proceedings-article", "chapter": "book-chapter",
    "book": "book", "thesis": "dissertation", "report": "report", "article": "preprint", "posted-content": "preprint",
    # Crossref's citeproc-json, a CSL dialect, names its own types
    "journal-article": "journal-article", "proceedings-article": "proceedings-article", "book-chapter": "book-chapter",
    "dissertation": "dissertation", "monograph": "book", "edited-book": "book",
}


def _read_csl_json(text: str, file_name: str, location: str) -> tuple[list[tuple[int, PaperData]], list[str], int]:
    items = load_json(text, location, malformed="not valid JSON")
    if not isinstance(items, list):
        raise ParseError("CSL-JSON must be a list of items", location=location, line=1)
    drafts: list[tuple[int, PaperData]] = []
    skipped: list[str] = []
    for number, item in enumerate(items, 1):
        paper = _csl_paper(item, file_name) if isinstance(item, dict) else "not a CSL item (an object)"
        if isinstance(paper, str):
            skipped.append(f"{file_name}: item {number}: {paper}, skipped")
        else:
            drafts.append((number, paper))
    return drafts, skipped, len(items)


def _csl_text(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value) if value is not None else ""


def _csl_paper(item: dict[str, Any], file_name: str) -> PaperData | str:
    title = _title(_csl_text(item.get("title")), tex=False)
    if not title:
        return "no title"
    parts = (item.get("issued") or {}).get("date-parts") if isinstance(item.get("issued"), dict) else None
    published = None
    if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0]:
        published = _published(None, iso="-".join(str(p) for p in parts[0][:3] if p is not None))
    elif isinstance(item.get("issued"), dict):
        published = _published(_csl_text(item["issued"].get("raw") or item["issued"].get("literal")))
    url = _url(_csl_text(item.get("URL")))
    doi = _doi(_csl_text(item.get("DOI"))) or _doi_from_url(url)
    venue = clean_text(_csl_text(item.get("container-title"))) or None
    number = _csl_text(item.get("number"))
    arxiv_id = _arxiv_from_url(url) or _arxiv_mentioned(number, venue, _csl_text(item.get("publisher")), _csl_text(item.get("note")))
    key = clean_text(_csl_text(item.get("id"))) or doi or _fallback_key(title, published)
    keywords = item.get("keyword")
    paper = PaperData(
        source=SOURCE,
        source_id=f"{file_name}:{key}",
        title=title,
        abstract=_abstract(_csl_text(item.get("abstract")), tex=False),
        authors=[AuthorData(name=n) for a in as_list(item.get("author")) if (n := _person(a))],
        arxiv_id=arxiv_id,
        doi=doi,
        pmid=_pmid(_csl_text(item.get("PMID"))),
        pmcid=_pmcid(_csl_text(item.get("PMCID"))),
        venue=None if venue and _PREPRINT_VENUE.match(venue) else venue,
        url_abs=url,
        published=published,
        work_type=_CSL_TYPES.get(str(item.get("type") or "")),
        publisher=clean_text(_csl_text(item.get("publisher"))) or None,
        issns=[m.group(0).upper() for m in re.finditer(r"\b\d{4}-\d{3}[\dXx]\b", _csl_text(item.get("ISSN")))][:2],
        keywords=_keywords(keywords if isinstance(keywords, list) else str(keywords or ""), tex=False),
    )
    return _finish(paper, file_name, key, {"type": str(item.get("type") or "")})


def _read_jsonl(text: str, file_name: str, location: str) -> tuple[list[tuple[int, PaperData]], list[str], int]:
    """One dict per line, PaperData's field names (or a CSL item); a whole-file JSON object is one item."""
    try:
        whole = load_json(text, location)
    except ParseError:
        whole = None
    lines: list[tuple[int, str]] = [(1, text)] if isinstance(whole, dict) else list(enumerate(text.splitlines(), 1))
    drafts: list[tuple[int, PaperData]] = []
    skipped: list[str] = []
    entries = 0
    for lineno, line in lines:
        if not line.strip():
            continue
        entries += 1
        try:
            item = load_json(line, location, malformed="not valid JSON", line=lineno)
        except ParseError as exc:
            skipped.append(f"{file_name}:{lineno}: {str(exc).removeprefix(f'{exc.location}:{exc.line}: ')}, skipped")
            continue
        if not isinstance(item, dict):
            skipped.append(f"{file_name}:{lineno}: not a JSON object, skipped")
            continue
        looks_csl = any(k in item for k in ("container-title", "issued", "DOI", "URL"))
        paper = _csl_paper(item, file_name) if looks_csl else _jsonl_paper(item, file_name)
        if isinstance(paper, str):
            skipped.append(f"{file_name}:{lineno}: {paper}, skipped")
        else:
            drafts.append((lineno, paper))
    return drafts, skipped, entries


def _jsonl_paper(item: dict[str, Any], file_name: str) -> PaperData | str:
    title = _title(str(item.get("title") or ""), tex=False)
    if not title:
        return "no title"
    listed = item.get("authors") or []
    authors = split_author_list(clean_text(listed)) if isinstance(listed, str) else []
    for author in listed if isinstance(listed, list) else []:
        if isinstance(author, dict) and (name := clean_text(str(author.get("name") or ""))):
            authors.append(AuthorData(name=name, affiliation=as_str(author.get("affiliation")), orcid=as_str(author.get("orcid"))))
        elif isinstance(author, str) and clean_text(author):
            authors.append(AuthorData(name=tex_to_unicode(clean_text(author))))
    published = _published(None, iso=str(item["published"])) if item.get("published") else None
    url = _url(str(item.get("url_abs") or item.get("url") or ""))
    given_id = str(item.get("source_id") or item.get("id") or "")
    arxiv_id = _arxiv(str(item.get("arxiv_id") or "")) or _arxiv_from_url(url) or _arxiv(given_id)
    doi = _doi(str(item.get("doi") or "")) or _doi_from_url(url)
    key = clean_text(given_id) or arxiv_id or doi or _fallback_key(title, published)
    categories = item.get("categories") or []
    categories = categories.split() if isinstance(categories, str) else categories
    paper = PaperData(
        source=SOURCE,
        source_id=f"{file_name}:{key}",
        title=title,
        abstract=_abstract(str(item.get("abstract") or ""), tex=False),
        authors=authors,
        arxiv_id=arxiv_id,
        doi=doi,
        pmid=_pmid(str(item.get("pmid") or "")),
        pmcid=_pmcid(str(item.get("pmcid") or "")),
        categories=[str(c) for c in categories if c] if isinstance(categories, list) else [],
        venue=clean_text(str(item.get("venue") or "")) or None,
        url_abs=url,
        published=published,
        work_type=str(item["work_type"]) if item.get("work_type") else None,
        keywords=_keywords(item.get("keywords") or [], tex=False),
    )
    return _finish(paper, file_name, key, {})


# ----------------------------------------------------------------------------- duplicates


def _merge_duplicates(drafts: list[tuple[int, PaperData]], file_name: str, notes: list[str]) -> list[PaperData]:
    """One record per work, by the store's own rules, so the counts a user sees are works: entries
    sharing a key, DOI, arXiv id, PMID or PMCID; sharing a URL and a title; or joined by the store's
    conservative fuzzy rule (a Mendeley library often holds a paper once with its DOI and once
    without). The first entry's values win, later ones fill gaps. A key reused by a different work
    (another title) becomes that work's key + "#2"."""
    papers = [paper for _line, paper in drafts]
    titles = [merge.title_key(p.title) for p in papers]
    parent = list(range(len(papers)))
    group_ids: dict[int, set[tuple[str, str]]] = {}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        a, b = find(a), find(b)
        if a != b:
            parent[max(a, b)] = min(a, b)
            group_ids[min(a, b)] = group_ids.pop(a, set()) | group_ids.pop(b, set())

    owner: dict[tuple[str, str], int] = {}
    key_titles: dict[str, str] = {}
    for i, (line, paper) in enumerate(drafts):
        key = _unique_key(paper, file_name, titles[i], key_titles, line, notes)
        identifiers = merge.record_identifiers(paper)
        group_ids[i] = {k for k in identifiers if k[0] not in ("url", "library")}
        for k in [("key", key), *identifiers]:
            if k not in owner:
                owner[k] = i
            elif k[0] != "url" or titles[owner[k]] == titles[i]:
                union(owner[k], i)

    by_title: dict[str, list[int]] = {}
    for i, title in enumerate(titles):
        if len(title) >= merge.FUZZY_MIN_TITLE:
            by_title.setdefault(title, []).append(i)
    rows: dict[int, merge.PaperRow] = {}
    for members in by_title.values():
        for n, a in enumerate(members):
            for b in members[n + 1 :]:
                if find(a) == find(b) or _conflict(group_ids.get(find(a), set()), group_ids.get(find(b), set())):
                    continue
                row_a = rows.setdefault(a, merge.new_row(papers[a], _EPOCH))
                row_b = rows.setdefault(b, merge.new_row(papers[b], _EPOCH))
                if merge.fuzzy_compatible(row_a, row_b):
                    union(a, b)

    groups: dict[int, list[int]] = {}
    for i in range(len(papers)):
        groups.setdefault(find(i), []).append(i)
    result = []
    for members in groups.values():
        paper = papers[members[0]]
        for i in members[1:]:
            _fold_into(paper, papers[i])
        result.append(paper)
    return result


_SOURCE_ID_MAX = 255  # source_records.source_id
_EPOCH = datetime(2000, 1, 1)  # new_row wants a clock; these rows are only compared, never stored


def _unique_key(paper: PaperData, file_name: str, title: str, key_titles: dict[str, str], line: int, notes: list[str]) -> str:
    """The entry's key, made unique in the file: empty keys get a stable one from the title, and a
    key already used by another title gets "#2", "#3"…; sets source_id and raw["library_key"]."""
    key = paper.source_id[len(file_name) + 1 :]
    if key == "" or key.startswith("~"):
        key = _fallback_key(paper.title, paper.published)
    elif len(file_name) + 1 + len(key) > _SOURCE_ID_MAX - 8:  # room for "#2"; the store keeps 255
        key = "~" + hashlib.blake2b(key.encode(), digest_size=5).hexdigest()
    base, n = key, 1
    while key_titles.get(key, title) != title:
        n += 1
        key = f"{base}#{n}"
    if n > 1:
        notes.append(f"{file_name}:{line}: key {base!r} is already another work's; kept as {key!r}")
    key_titles.setdefault(key, title)
    paper.source_id = f"{file_name}:{key}"
    paper.raw["library_key"] = paper.source_id
    return key


def _conflict(a: set[tuple[str, str]], b: set[tuple[str, str]]) -> bool:
    """Two groups both carry an identifier of one kind, with different values (two DOIs)."""
    schemes: dict[str, set[str]] = {}
    for scheme, value in a:
        schemes.setdefault(scheme, set()).add(value)
    return any(scheme in schemes and value not in schemes[scheme] for scheme, value in b)


_FILLED = ("abstract", "arxiv_id", "doi", "pmid", "pmcid", "venue", "url_abs", "published", "work_type", "publisher")


def _fold_into(paper: PaperData, other: PaperData) -> None:
    for name in _FILLED:
        if not getattr(paper, name) and getattr(other, name):
            setattr(paper, name, getattr(other, name))
    if not paper.authors:
        paper.authors = other.authors
    paper.keywords = list(dict.fromkeys([*paper.keywords, *other.keywords]))
    paper.issns = list(dict.fromkeys([*paper.issns, *other.issns]))
    paper.raw.setdefault("duplicates", []).append(other.source_id.split(":", 1)[1])


__all__ = ["LibraryImport", "detect_library_format", "import_library", "imported_paper_ids", "read_library", "tex_text"]
