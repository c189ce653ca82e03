"""Saved papers to Zotero through its Web API v3: item JSON per Zotero's schema (journalArticle,
or preprint with `archiveID` "arXiv:…"), POSTed 50 at a time to /users/<id>/items or
/groups/<id>/items with `Zotero-API-Key`, `Zotero-API-Version: 3` and a `Zotero-Write-Token`.

The write token is derived from the library and the papers of the request, so a retry of the same
request (after a timeout, a crash, a second click) carries the same token, and Zotero answers
412 instead of writing the items twice: that request is then counted as already pushed. The HTTP
client is the project's polite one (sources/http.py: retries on 429/5xx, deadlines, size cap).
The API key travels in a header only: never in a URL, an error message or a log line."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..errors import SourceError
from ..settings import Settings
from ..store.saved import ZoteroLink
from .formats import _doi, _split_name, kind
from .records import ExportRecord

BATCH = 50  # Zotero's limit of objects per write request
LIBRARY_TYPES = ("user", "group")
_KEY = re.compile(r"^[A-Za-z0-9]{8,64}$")


class ZoteroError(SourceError):
    """A push Zotero refused (a bad key, a library that is not there) or a link that is malformed."""


def check_link(library_type: str, library_id: str, api_key: str | None) -> tuple[str, str, str | None]:
    """The link's parts, checked: "user"/"group", a numeric id, a key of letters and digits."""
    library_type = (library_type or "").strip().lower()
    library_id = (library_id or "").strip()
    api_key = (api_key or "").strip() or None
    if library_type not in LIBRARY_TYPES:
        raise ZoteroError.translatable("the Zotero library is a user's or a group's")
    if not (library_id.isascii() and library_id.isdigit() and len(library_id) <= 20):
        raise ZoteroError.translatable("a Zotero library id is a number (zotero.org/settings/keys shows yours)")
    if api_key is not None and not _KEY.match(api_key):
        raise ZoteroError.translatable("a Zotero API key is letters and digits (zotero.org/settings/keys)")
    return library_type, library_id, api_key


def zotero_item(record: ExportRecord) -> dict:
    """One item in Zotero's JSON: a preprint (with its repository and archive id) or a journal article."""
    preprint = kind(record) == "preprint"
    creators = []
    for name in record.authors:
        given, family = _split_name(name)
        creators.append({"creatorType": "author", "firstName": given, "lastName": family} if given
                        else {"creatorType": "author", "name": family})
    item: dict = {
        "itemType": "preprint" if preprint else "journalArticle",
        "title": " ".join(record.title.split()),
        "creators": creators,
        "abstractNote": " ".join(record.abstract.split()),
        "date": record.published.isoformat() if record.published else "",
        "DOI": _doi(record) or "",
        "url": record.url or "",
        "tags": [{"tag": k} for k in record.keywords],
    }
    if preprint:
        item["repository"] = "arXiv" if record.arxiv_id else (record.publisher or "")
        item["archiveID"] = f"arXiv:{record.arxiv_id}" if record.arxiv_id else ""
    else:
        item["publicationTitle"] = record.venue or ""
        item["ISSN"] = record.issn or ""
    extra = [f"PMID: {record.pmid}" if record.pmid else "", f"PMCID: {record.pmcid}" if record.pmcid else "",
             f"arXiv: {record.arxiv_id}" if record.arxiv_id and not preprint else ""]
    item["extra"] = "\n".join(e for e in extra if e)
    return item


def write_token(salt: str, link: ZoteroLink, paper_ids: Iterable[int]) -> str:
    """32 hex characters, the same for the same papers to the same library."""
    text = f"{salt}|{link.library_type}/{link.library_id}|{','.join(map(str, sorted(paper_ids)))}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass(slots=True)
class PushReport:
    pushed: int = 0  # items Zotero wrote
    unchanged: int = 0  # items Zotero already had as sent
    already: int = 0  # items of requests Zotero had done before (412: the write token was used)
    failed: list[tuple[int, str]] = field(default_factory=list)  # (paper id, Zotero's message)
    requests: int = 0

    def line(self) -> str:
        return (f"{self.pushed} pushed, {self.unchanged} unchanged, {self.already} already pushed, "
                f"{len(self.failed)} failed")


class ZoteroClient:
    def __init__(self, settings: Settings, link: ZoteroLink, *, transport=None):
        from ..sources.http import PoliteClient

        self.link = link
        self.base = settings.zotero_api_url.rstrip("/")
        self.http = PoliteClient(
            user_agent=settings.full_user_agent, timeout=settings.http_timeout, retries=settings.http_retries,
            max_backoff=settings.http_max_backoff, max_bytes=settings.max_response_bytes,
            request_deadline=settings.http_request_deadline, transport=transport,
        )

    @property
    def items_url(self) -> str:
        return f"{self.base}/{self.link.library_type}s/{self.link.library_id}/items"

    def close(self) -> None:
        self.http.close()

    def push(self, records: list[ExportRecord], *, on_batch: Callable[[dict[int, str | None]], None] | None = None,
             salt: str = "") -> PushReport:
        """POST the records 50 at a time; `on_batch` gets each request's pushed papers (id -> key)."""
        from ..sources.http import HTTPStatusError

        report = PushReport()
        for start in range(0, len(records), BATCH):
            batch = records[start:start + BATCH]
            headers = {
                "Zotero-API-Key": self.link.api_key,
                "Zotero-API-Version": "3",
                "Zotero-Write-Token": write_token(salt, self.link, (r.id for r in batch)),
            }
            report.requests += 1
            try:
                reply = self.http.post_json(self.items_url, [zotero_item(r) for r in batch], headers=headers)
            except HTTPStatusError as exc:
                if exc.status == 412:  # this write token was used: the same request went through before
                    report.already += len(batch)
                    if on_batch:
                        on_batch({r.id: None for r in batch})
                    continue
                raise ZoteroError(f"Zotero refused the push (HTTP {exc.status}): {_said(exc.body)}",
                                  url=self.items_url) from exc
            written = self._written(reply.content, batch, report)
            if on_batch and written:
                on_batch(written)
        return report

    def _written(self, content: bytes, batch: list[ExportRecord], report: PushReport) -> dict[int, str | None]:
        try:
            answer = json.loads(content or b"{}")
        except ValueError as exc:
            raise ZoteroError("Zotero's answer is not JSON", url=self.items_url) from exc
        written: dict[int, str | None] = {}
        success = answer.get("success") or {}
        for index, value in (answer.get("successful") or {}).items():
            key = value.get("key") if isinstance(value, dict) else None
            success.setdefault(index, key)
        for index, key in success.items():
            if str(index).isdigit() and int(index) < len(batch):
                written[batch[int(index)].id] = key if isinstance(key, str) else None
                report.pushed += 1
        for index, key in (answer.get("unchanged") or {}).items():
            if str(index).isdigit() and int(index) < len(batch):
                written[batch[int(index)].id] = key if isinstance(key, str) else None
                report.unchanged += 1
        for index, value in (answer.get("failed") or {}).items():
            if str(index).isdigit() and int(index) < len(batch):
                message = value.get("message", "") if isinstance(value, dict) else str(value)
                report.failed.append((batch[int(index)].id, str(message)[:300]))
        return written


def _said(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace").strip().replace("\n", " ") or "no explanation"


__all__ = ["BATCH", "LIBRARY_TYPES", "PushReport", "ZoteroClient", "ZoteroError", "check_link", "write_token",
           "zotero_item"]
