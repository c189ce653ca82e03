"""The venue catalog: which journals AcademicHub knows, how to follow them (table-of-contents feeds)
and how to recognise them in other sources' records (ISSN, OpenAlex id, PubMed abbreviation, name).

The catalog ships in academichub/data/venues.toml; a user's `<data_dir>/venues.toml` adds venues and
overrides shipped ones field by field, so a user can correct a feed URL without copying the entry.
Everything is validated when loaded (ISSN check digits, one ISSN per venue, required fields, no
unknown fields), and an error names the file and the entry, because a typo in a catalog should
stop the user at once rather than make a journal silently unfindable."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields as dataclass_fields
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .names import fold
from .sources.publisher_feed import FeedMapping

USER_FILE_NAME = "venues.toml"

_KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_ISSN = re.compile(r"^\d{4}-\d{3}[\dX]$")
_OPENALEX = re.compile(r"^S\d+$")
_STRING_FIELDS = ("name", "short", "publisher", "issn_print", "issn_electronic", "openalex", "abbreviation")
_LIST_FIELDS = ("fields", "aliases", "rss")
_REQUIRED = ("name", "short", "fields")
_MAPPING_FIELDS = {f.name for f in dataclass_fields(FeedMapping)}


@dataclass(frozen=True, slots=True)
class Venue:
    key: str
    name: str
    short: str  # the label on a card: "Nat. Methods", "PRL"
    fields: tuple[str, ...]
    publisher: str | None = None
    issn_print: str | None = None
    issn_electronic: str | None = None
    openalex_id: str | None = None
    abbreviation: str | None = None  # PubMed/ISO: "Proc Natl Acad Sci U S A"
    aliases: tuple[str, ...] = ()
    rss: tuple[str, ...] = ()
    feed_mapping: FeedMapping | None = None  # where this venue's feed keeps fields the defaults miss

    @property
    def issns(self) -> list[str]:
        return [issn for issn in (self.issn_print, self.issn_electronic) if issn]


def shipped_catalog() -> Path:
    return Path(str(resources.files("academichub") / "data" / "venues.toml"))


def issn_check_digit_ok(issn: str) -> bool:
    """ISO 3297: the eighth character is the mod-11 check of the first seven (X stands for 10)."""
    if not _ISSN.match(issn):
        return False
    digits = issn.replace("-", "")
    total = sum((8 - position) * int(digit) for position, digit in enumerate(digits[:7]))
    check = (11 - total % 11) % 11
    return digits[7] == ("X" if check == 10 else str(check))


def load_venues(data_dir: Path | None = None) -> dict[str, Venue]:
    """The shipped catalog with the user's file (if any) laid over it, validated, by key."""
    if data_dir is None:
        from .settings import load_settings

        data_dir = load_settings().data_dir
    shipped_path = shipped_catalog()
    entries = {key: (dict(entry), shipped_path) for key, entry in _read(shipped_path).items()}
    user_path = Path(data_dir) / USER_FILE_NAME
    if user_path.is_file():
        for key, entry in _read(user_path).items():
            base = entries[key][0] if key in entries else {}
            entries[key] = ({**base, **entry}, user_path)

    venues: dict[str, Venue] = {}
    owner_of_issn: dict[str, tuple[str, Path]] = {}
    for key, (entry, path) in entries.items():
        venue = _venue(key, entry, path)
        for issn in venue.issns:
            if issn in owner_of_issn:
                other_key, other_path = owner_of_issn[issn]
                where = f" (in {other_path})" if other_path != path else ""
                raise ConfigError(f"{path}: entry {key!r}: ISSN {issn} is already entry {other_key!r}'s{where}")
            owner_of_issn[issn] = (key, path)
        venues[key] = venue
    return venues


def find_venue(text_or_issn: str, venues: dict[str, Venue] | None = None) -> Venue | None:
    """The venue a key, ISSN, name, short label, alias or abbreviation names; case, accents,
    punctuation, "&"/"and" and a leading "The" do not matter ("Proc. Natl. Acad. Sci. U.S.A.")."""
    wanted = _lookup_key(text_or_issn or "")
    if not wanted:
        return None
    if venues is None:
        venues = load_venues()
    # One pass per kind of name, so a key or an ISSN wins over another venue's name or alias.
    passes = (
        lambda v: [v.key],
        lambda v: v.issns,
        lambda v: [v.name],
        lambda v: [v.short, *v.aliases],
        lambda v: [v.abbreviation] if v.abbreviation else [],
    )
    for names_of in passes:
        for venue in venues.values():
            if any(_lookup_key(name) == wanted for name in names_of(venue)):
                return venue
    return None


def _lookup_key(text: str) -> str:
    words = fold(text.replace("&", " and ")).replace("-", " ").split()
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    return "".join(words)


def _read(path: Path) -> dict[str, dict]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read venue catalog: {exc}") from exc
    for key, entry in data.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: {key!r} is not an entry; each venue is a [table] of its own")
    return data


def _venue(key: str, entry: dict[str, Any], path: Path) -> Venue:
    def fail(message: str) -> ConfigError:
        return ConfigError(f"{path}: entry {key!r}: {message}")

    if not _KEY.match(key):
        raise fail("keys are lower-case letters, digits and hyphens")
    unknown = set(entry) - set(_STRING_FIELDS) - set(_LIST_FIELDS) - {"feed"}
    if unknown:
        raise fail(f"unknown field(s) {', '.join(sorted(unknown))}")
    for name in _STRING_FIELDS:
        if name in entry and (not isinstance(entry[name], str) or not entry[name].strip()):
            raise fail(f"{name} must be a non-empty string")
    for name in _LIST_FIELDS:
        value = entry.get(name, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            raise fail(f"{name} must be a list of non-empty strings")
    missing = [name for name in _REQUIRED if not entry.get(name)]
    if missing:
        raise fail(f"missing required field(s) {', '.join(missing)}")
    for name in ("issn_print", "issn_electronic"):
        issn = entry.get(name)
        if issn is not None and not issn_check_digit_ok(issn):
            raise fail(f"{name} {issn!r} is not a valid ISSN (NNNN-NNNC, check digit)")
    if entry.get("issn_print") and entry.get("issn_print") == entry.get("issn_electronic"):
        raise fail("issn_print and issn_electronic are the same")
    if "openalex" in entry and not _OPENALEX.match(entry["openalex"]):
        raise fail(f"openalex {entry['openalex']!r} is not an OpenAlex source id (S followed by digits)")
    for url in entry.get("rss", []):
        if not url.startswith(("https://", "http://")):
            raise fail(f"rss {url!r} is not an http(s) URL")
    return Venue(
        key=key,
        name=entry["name"].strip(),
        short=entry["short"].strip(),
        fields=tuple(entry["fields"]),
        publisher=entry.get("publisher"),
        issn_print=entry.get("issn_print"),
        issn_electronic=entry.get("issn_electronic"),
        openalex_id=entry.get("openalex"),
        abbreviation=entry.get("abbreviation"),
        aliases=tuple(entry.get("aliases", [])),
        rss=tuple(entry.get("rss", [])),
        feed_mapping=_feed_mapping(entry.get("feed"), fail),
    )


def _feed_mapping(table: Any, fail) -> FeedMapping | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise fail("feed must be a table ([key.feed])")
    unknown = set(table) - _MAPPING_FIELDS
    if unknown:
        raise fail(f"feed: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_MAPPING_FIELDS))}")
    values = dict(table)
    if "abstract_drop" in values:
        drop = values["abstract_drop"]
        if not isinstance(drop, list) or not all(isinstance(p, str) for p in drop):
            raise fail("feed: abstract_drop must be a list of regular expressions")
        for pattern in drop:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise fail(f"feed: abstract_drop {pattern!r}: {exc}") from exc
        values["abstract_drop"] = tuple(drop)
    for name, value in values.items():
        if name != "abstract_drop" and not isinstance(value, str):
            raise fail(f"feed: {name} must be a string")
    return FeedMapping(**values)
