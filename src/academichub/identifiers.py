"""One spelling per identifier (DOI, arXiv id, PMCID, OpenAlex, ...): the merge keys its works on
them, and the store finds a paper a person names (a pasted DOI or arXiv id) with the same rules.
Pure functions, below every layer that needs them."""

from __future__ import annotations


def norm_doi(doi: str | None) -> str | None:
    if not doi:
        return None
    doi = doi.strip()
    lowered = doi.lower()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:"):
        if lowered.startswith(prefix):
            doi = doi[len(prefix):]
            break
    doi = doi.strip().lower()
    return doi if doi.startswith("10.") else None


def norm_identifier(scheme: str, value: str | None) -> tuple[str, str] | None:
    """One spelling per identifier; an arXiv DOI becomes the arXiv id it names."""
    if not value:
        return None
    value = str(value).strip()
    if scheme == "doi":
        doi = norm_doi(value)
        if doi is None:
            return None
        if doi.startswith("10.48550/arxiv."):
            return ("arxiv", strip_version(doi[len("10.48550/arxiv."):]))
        return ("doi", doi)
    if scheme == "arxiv":
        return ("arxiv", strip_version(value.lower().removeprefix("arxiv:")))
    if scheme == "pmcid":
        value = value.upper()
        return ("pmcid", value if value.startswith("PMC") else f"PMC{value}")
    if scheme == "openalex":
        return ("openalex", value.rsplit("/", 1)[-1].upper())
    if scheme in ("pmid", "s2"):
        return (scheme, value)
    if scheme == "url" and value.startswith(("http://", "https://")):
        return ("url", value[:255])
    return None


def strip_version(arxiv_id: str) -> str:
    head, sep, tail = arxiv_id.rpartition("v")
    if sep and head and tail.isdigit() and (head[-1].isdigit()):
        return head
    return arxiv_id
