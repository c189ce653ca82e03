"""One description per upstream. A `SourceKind` says everything the rest of the code needs to know
about an upstream: its name and label, its merge family and field precedence, the file format it
reads (how to sniff it, how to parse it), how to page through it for one run, its parameters and
their check, how politely to fetch it and when it is next due. Each source module declares its
own kinds (`SOURCE_KINDS`); ingest/, store/ and the front ends read them from this registry
instead of keeping their own lists, so adding a source is one module plus its tests plus one line
in `BUILTIN_MODULES` (or, outside this package, an `academichub.sources` entry point).

This module sits in sources/ and imports neither ingest/ nor store/: what paging needs from the
store (the papers Semantic Scholar should describe) is passed in through `Fetch`."""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, Union

from ..errors import ConfigError
from ..model import PaperData, ParsedBatch

if TYPE_CHECKING:
    from ..settings import Settings

# The source modules of this package, in the order their kinds are listed and their formats
# sniffed. A new upstream is one more name here.
BUILTIN_MODULES = (
    "arxiv_rss", "arxiv_api", "arxiv_oai", "arxiv_snapshot", "crossref", "pubmed", "biorxiv", "openalex",
    "publisher_feed", "semanticscholar",
)
# Installed distributions add kinds through this entry point group; an entry point names a module
# with SOURCE_KINDS, a SourceKind, or an iterable of them.
ENTRY_POINT_GROUP = "academichub.sources"


# ----------------------------------------------------------------------------- the parts of a kind


@dataclass(frozen=True)
class MergeFamily:
    """Records of one family are versions of one another (the newer wins); between families a
    per-field rank decides (a journal's title over a preprint's). Kinds that are the same upstream
    read in different ways (arXiv's RSS, API, OAI-PMH, snapshot) share one family object."""

    name: str
    default_rank: int
    ranks: Mapping[str, int] = field(default_factory=dict)

    def rank(self, field_name: str) -> int:
        return self.ranks.get(field_name, self.default_rank)


@dataclass(frozen=True)
class Head:
    """The start of a document as format sniffing sees it: UTF-8 without byte order mark, from the
    root element on (the XML prolog skipped) or from the first JSON byte."""

    syntax: str  # "xml" or "json"
    text: bytes
    root: bytes | None = None  # the XML root element's local name


Sniff = Callable[[Head], bool]


def xml_root(*names: str, containing: bytes | None = None) -> Sniff:
    """A sniffer for XML whose root element is one of `names` (local names), and, with `containing`,
    whose first 2 KiB from the root on contain that marker (e.g. arXiv's namespace)."""
    wanted = frozenset(name.encode() for name in names)

    def sniff(head: Head) -> bool:
        return head.root in wanted and (containing is None or containing in head.text[:2048])

    return sniff


def json_key(name: str) -> Sniff:
    """A sniffer for a JSON object carrying `name` as a key in its head (the same word inside a
    string value has its quotes escaped and does not match)."""
    pattern = re.compile(rb'"' + re.escape(name.encode()) + rb'"\s*:')

    def sniff(head: Head) -> bool:
        return head.text.startswith(b"{") and pattern.search(head.text) is not None

    return sniff


@dataclass(frozen=True)
class FileFormat:
    """A document format a kind reads from a file, an upload or a URL: how detection recognises it
    and how it is parsed. Exactly one of `parse` (a whole document) and `stream` (record by record,
    for bulk files of any size) is given."""

    name: str  # what `ingest.formats.detect_format` names, e.g. "arxiv-rss"
    syntax: str  # "xml" or "json": only heads of this syntax are offered to `sniff`
    sniff: Sniff
    description: str  # for "expected …" in the message that refuses an unknown document
    parse: Callable[[bytes, str], ParsedBatch] | None = None
    stream: Callable[[IO[bytes], str], Iterator[PaperData]] | None = None
    # Sniffers run in (sniff_order, registration) order: a key match (0) before a guess from a
    # document's shape (10) before a match on a value (20); a format that only claims what a more
    # specific one refused (a publisher's RSS after arXiv's) comes later too.
    sniff_order: int = 0
    bulk: bool = False  # large files: parsed in a forked worker while the last batch is written
    commit_each_batch: bool = False  # a bulk import that keeps what it wrote when it fails later on
    announces: bool = False  # its batches carry an arXiv announcement, stored with the papers
    constant: str = ""  # the name code uses for it (ingest.formats.Format.<constant>); default from name

    def __post_init__(self) -> None:
        if (self.parse is None) == (self.stream is None):
            raise ConfigError(f"file format {self.name!r}: give exactly one of parse and stream")
        if self.syntax not in ("xml", "json"):
            raise ConfigError(f"file format {self.name!r}: syntax must be 'xml' or 'json', not {self.syntax!r}")
        if not self.constant:
            object.__setattr__(self, "constant", self.name.upper().replace("-", "_"))

    @property
    def value(self) -> str:
        """The name, as `Format.X.value` read when formats were an enum."""
        return self.name

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Param:
    """One `--param key=value` of a kind, with the help `sources kinds` shows."""

    name: str
    help: str
    required: bool = False


@dataclass(slots=True)
class LinkBatch:
    """Preprint -> journal DOI pairs (bioRxiv's /pubs): links between stored works, not records."""

    links: list[tuple[str, str]]


@dataclass(frozen=True)
class Fetch:
    """What a kind's paging gets for one run: the source row, the settings, the polite client made
    for it (`http.get(url)` answers a `Fetched`) and the window of days to fetch."""

    source: dict
    settings: Settings
    http: Any
    start: date
    end: date
    # recent stored papers an enrichment upstream should describe, as lookup ids (ARXIV:…, DOI:…,
    # PMID:…): (since, limit) -> ids; the runner passes the store's answer
    papers_to_enrich: Callable[[date, int], list[str]] = field(default=lambda since, limit: [])

    @property
    def params(self) -> dict:
        return self.source.get("params") or {}


Page = Union[ParsedBatch, LinkBatch]


def interval_schedule(source: dict, now: datetime) -> datetime:
    """The default schedule: `interval_minutes` after the last run; at once when it never ran."""
    last = source.get("last_run_at")
    return now if last is None else last + timedelta(minutes=source["interval_minutes"])


@dataclass(frozen=True)
class SourceKind:
    """One upstream, or one way of reading it. A kind with `pages` can be configured as a source
    (`sources add NAME`); a kind with only a `file` is a format that `ingest` reads (arXiv's API
    answers, OAI-PMH dumps, the snapshot)."""

    name: str  # a source row's kind (`sources add crossref …`) or, for a file-only kind, its records' source
    label: str  # what a card shows when nothing better is known: "Crossref", "bioRxiv"
    family: MergeFamily
    records: tuple[str, ...] = ()  # the `PaperData.source` values its records carry; default (name,)
    file: FileFormat | None = None
    pages: Callable[[Fetch], Iterator[Page]] | None = None
    params: tuple[Param, ...] = ()
    # rules between parameters (exactly one of issn / member / prefix); raises ConfigError
    check: Callable[[dict], None] | None = None
    # parameters made safe with the settings at hand when a source is added (a feed URL checked
    # against private addresses); returns the params to store
    prepare: Callable[[dict, Settings], dict] | None = None
    min_interval: float | Callable[[Settings], float] = 0.0  # seconds between requests to its host
    conditional: bool = False  # fetches send the ETag / Last-Modified kept from the last answer
    client_options: Callable[[Settings], dict] | None = None  # more PoliteClient options (size cap, transport)
    next_run: Callable[[dict, datetime], datetime] = interval_schedule  # (source row, now) -> next due

    def __post_init__(self) -> None:
        if not self.records:
            object.__setattr__(self, "records", (self.name,))

    @property
    def addable(self) -> bool:
        """Can a source of this kind be configured (does it fetch by itself)?"""
        return self.pages is not None

    def interval(self, settings: Settings) -> float:
        return self.min_interval(settings) if callable(self.min_interval) else float(self.min_interval)

    def check_params(self, params: dict) -> None:
        """Refuse parameters this kind could never run with (a required one missing, a bad mix)."""
        for param in self.params:
            if param.required and not params.get(param.name):
                raise ConfigError(f"a {self.name} source needs --param {param.name}=…")
        if self.check is not None:
            self.check(params)


# ----------------------------------------------------------------------------- the registry


class _Registry:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.loading = False
        self.loaded = False
        self.kinds: dict[str, SourceKind] = {}
        self.by_record: dict[str, SourceKind] = {}
        self.formats: dict[str, FileFormat] = {}
        self.sniffers: tuple[FileFormat, ...] = ()


_REGISTRY = _Registry()


def _ensure_loaded() -> _Registry:
    registry = _REGISTRY
    if registry.loaded:
        return registry
    with registry.lock:  # other threads wait here until the load is done
        if registry.loaded or registry.loading:  # loading: this very thread, registering what it loads
            return registry
        registry.loading = True
        try:
            for module_name in BUILTIN_MODULES:
                _register_all(importlib.import_module(f"{__package__}.{module_name}"), module_name)
            for entry_point in _entry_points():
                try:
                    declared = entry_point.load()
                except Exception as exc:  # a plugin that cannot even be imported is named, not skipped
                    raise ConfigError(
                        f"source plugin {entry_point.name!r} ({entry_point.value}) cannot be loaded: {exc}"
                    ) from exc
                _register_all(declared, f"entry point {entry_point.name!r}")
            registry.loaded = True
        finally:
            registry.loading = False
    return registry


def _entry_points() -> list:
    from importlib.metadata import entry_points

    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _register_all(declared: ModuleType | SourceKind | Iterable[SourceKind], origin: str) -> None:
    if isinstance(declared, ModuleType):
        declared = getattr(declared, "SOURCE_KINDS", None)
        if declared is None:
            raise ConfigError(f"{origin}: the module declares no SOURCE_KINDS")
    if isinstance(declared, SourceKind):
        declared = (declared,)
    for kind in declared:
        if not isinstance(kind, SourceKind):
            raise ConfigError(f"{origin}: {kind!r} is not a SourceKind")
        register(kind)


def register(kind: SourceKind) -> SourceKind:
    """Add a kind (the built-in ones first, so their order stays). A name, record source or file
    format taken by another kind is refused; registering the same kind again changes nothing."""
    registry = _ensure_loaded()
    with registry.lock:
        known = registry.kinds.get(kind.name)
        if known is kind:
            return kind
        if known is not None:
            raise ConfigError(f"source kind {kind.name!r} is registered already")
        for record in kind.records:
            if record in registry.by_record:
                raise ConfigError(f"record source {record!r} of kind {kind.name!r} belongs to {registry.by_record[record].name!r}")
        if kind.file is not None:
            for taken in registry.formats.values():
                if kind.file.name == taken.name or kind.file.constant == taken.constant:
                    raise ConfigError(f"file format {kind.file.name!r} of kind {kind.name!r} is registered already")
        registry.kinds[kind.name] = kind
        for record in kind.records:
            registry.by_record[record] = kind
        if kind.file is not None:
            registry.formats[kind.file.name] = kind.file
            _order_sniffers(registry)
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests, and a plugin taking itself back); unknown names are ignored."""
    registry = _ensure_loaded()
    with registry.lock:
        kind = registry.kinds.pop(name, None)
        if kind is None:
            return
        for record in kind.records:
            registry.by_record.pop(record, None)
        if kind.file is not None:
            registry.formats.pop(kind.file.name, None)
            _order_sniffers(registry)


def _order_sniffers(registry: _Registry) -> None:
    position = {name: i for i, name in enumerate(registry.formats)}
    registry.sniffers = tuple(sorted(registry.formats.values(), key=lambda f: (f.sniff_order, position[f.name])))


def all_kinds() -> tuple[SourceKind, ...]:
    """Every registered kind, the built-in ones in `BUILTIN_MODULES` order."""
    return tuple(_ensure_loaded().kinds.values())


def addable_kinds() -> tuple[SourceKind, ...]:
    """The kinds a source can be configured with (they fetch by themselves)."""
    return tuple(kind for kind in all_kinds() if kind.addable)


def find_kind(name: str | None) -> SourceKind | None:
    return _ensure_loaded().kinds.get(name) if name else None


def get_kind(name: str) -> SourceKind:
    """The kind of this name; ConfigError naming the known kinds when there is none."""
    kind = find_kind(name)
    if kind is None or not kind.addable:
        names = ", ".join(k.name for k in addable_kinds())
        raise ConfigError(f"unknown source kind {name!r}; kinds are: {names}")
    return kind


def kind_of_record(source: str | None) -> SourceKind | None:
    """The kind whose records carry this `PaperData.source` ("arxiv-rss" -> the arxiv kind)."""
    return _ensure_loaded().by_record.get(source) if source else None


def file_formats() -> tuple[FileFormat, ...]:
    """The detectable formats, in the order their sniffers run."""
    return _ensure_loaded().sniffers


def find_format(name: str) -> FileFormat | None:
    return _ensure_loaded().formats.get(name)


def format_by_constant(constant: str) -> FileFormat | None:
    return next((f for f in _ensure_loaded().formats.values() if f.constant == constant), None)


def family_of(source: str | None) -> MergeFamily | None:
    """The merge family of records with this `PaperData.source`; None for a source no kind names."""
    kind = _ensure_loaded().by_record.get(source) if source else None
    return kind.family if kind is not None else None


def label_of(source: str | None) -> str | None:
    """What a card calls records of this source ("pmc" -> "PubMed Central"); None when unknown."""
    kind = _ensure_loaded().by_record.get(source) if source else None
    return kind.label if kind is not None else None
