"""The tables, as SQLAlchemy Core metadata. Migrations in `migrations/` create exactly this;
`academichub db check` compares the two."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    LargeBinary,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

papers = Table(
    "papers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("arxiv_id", String(40), unique=True),
    Column("arxiv_version", Integer),
    Column("doi", String(255)),
    Column("pmid", String(20)),
    Column("pmcid", String(20)),
    Column("openalex_id", String(40)),
    Column("s2_id", String(64)),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False, default=""),
    Column("authors_text", Text, nullable=False, default=""),
    Column("primary_category", String(64), index=True),
    Column("venue", Text),
    Column("journal_ref", Text),
    Column("license", Text),
    Column("comments", Text),
    Column("url_abs", Text),
    Column("url_pdf", Text),
    Column("submitted_at", DateTime),
    Column("announced_on", Date),
    Column("updated_at", DateTime),
    Column("published_on", Date),
    Column("versions", JSON, nullable=False, default=list),
    Column("provenance", JSON, nullable=False, default=dict),
    Column("content_hash", String(40), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("modified_at", DateTime, nullable=False),
    # Cross-source fields: where the paper came from first, the journal side, and the keys of the
    # conservative fuzzy match (normalized title + first author's family name + year).
    Column("origin", String(32)),
    Column("work_type", String(64)),
    Column("publisher", Text),
    Column("venue_abbrev", String(255)),
    Column("issn", String(16)),
    Column("server", String(16)),
    Column("title_key", String(255), index=True),
    Column("first_author_key", String(255)),
    Column("pub_year", Integer),
    Column("tldr", Text),
    Column("citation_count", Integer),
)

# The identifier columns but arxiv_id are unique where set (migration 0015): a paper lacks most
# of them (an arXiv record has no PMID, PMCID, OpenAlex or S2 id), and a plain unique index holds
# an entry for each NULL, which every insert writes. A look-up `col = ...` implies IS NOT NULL, so
# it still reads the index. arxiv_id keeps a full one: `arxiv_id IS NULL` is looked up.
PARTIALLY_UNIQUE_COLUMNS = ("doi", "pmid", "pmcid", "openalex_id", "s2_id")


def _index_where_set(name: str, *, unique: bool = False) -> Index:
    """An index of the papers whose column `name` is set (a partial index, migration 0015)."""
    column = papers.c[name]
    return Index(f"{'uq' if unique else 'ix'}_papers_{name}", column, unique=unique,
                 sqlite_where=column.isnot(None), postgresql_where=column.isnot(None))


for _name in PARTIALLY_UNIQUE_COLUMNS:
    _index_where_set(_name, unique=True)

paper_identifiers = Table(
    "paper_identifiers",
    metadata,
    Column("scheme", String(16), primary_key=True),  # arxiv | doi | pmid | pmcid | openalex | s2
    Column("value", String(255), primary_key=True),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("source", String(32), nullable=False),
)

paper_relations = Table(
    "paper_relations",
    metadata,
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("relation", String(32), primary_key=True),  # preprint-of | has-preprint | published-as
    Column("scheme", String(16), primary_key=True),
    Column("value", String(255), primary_key=True),
    Column("source", String(32), nullable=False),
    Index("ix_paper_relations_scheme_value", "scheme", "value"),
)

sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),  # arxiv | crossref | pubmed | biorxiv | medrxiv | openalex | feed | semanticscholar
    Column("label", Text),
    Column("params", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("interval_minutes", Integer, nullable=False),
    Column("last_run_at", DateTime),
    Column("last_success_at", DateTime),
    Column("last_error", Text),
    Column("last_error_at", DateTime),
    Column("failing_since", DateTime),
    Column("consecutive_failures", Integer, nullable=False),
    Column("last_added", Integer, nullable=False),
    Column("last_updated", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

paper_authors = Table(
    "paper_authors",
    metadata,
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("name_norm", String(255), nullable=False, index=True),
    Column("name_key", String(255), nullable=False, index=True),
    Column("affiliation", Text),
    Column("orcid", String(32)),
)

paper_subjects = Table(
    "paper_subjects",
    metadata,
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("scheme", String(16), primary_key=True),
    Column("code", String(255), primary_key=True),
    Column("is_primary", Boolean, nullable=False, default=False),
    Index("ix_paper_subjects_scheme_code", "scheme", "code"),
)

source_records = Table(
    "source_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("source", String(32), nullable=False),
    Column("source_id", String(255), nullable=False),
    Column("announce_type", String(32)),
    Column("raw", JSON, nullable=False),
    Column("fetched_at", DateTime, nullable=False),
    UniqueConstraint("source", "source_id", name="uq_source_records_source_source_id"),
)

announcements = Table(
    "announcements",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(32), nullable=False),
    Column("feed", Text, nullable=False),
    Column("announced_on", Date, nullable=False),
    Column("status", String(16), nullable=False),  # announced | empty
    Column("items", Integer, nullable=False, default=0),
    Column("skip_days", JSON, nullable=False, default=list),
    Column("checked_at", DateTime, nullable=False),
    UniqueConstraint("source", "feed", "announced_on", name="uq_announcements_source_feed_day"),
)

http_validators = Table(
    "http_validators",
    metadata,
    Column("url", String(2048), primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("updated_at", DateTime, nullable=False),
)

harvests = Table(
    "harvests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(32), nullable=False),
    Column("params_key", String(512), nullable=False),
    Column("params", JSON, nullable=False),
    Column("resumption_token", Text),
    Column("records_done", Integer, nullable=False, default=0),
    Column("complete_list_size", Integer),
    Column("status", String(16), nullable=False),  # running | complete | failed
    Column("error", Text),
    Column("started_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("source", "params_key", name="uq_harvests_source_params_key"),
)

# ----------------------------------------------------------------------------- the radar

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("email", String(255), unique=True),  # lower-cased; NULL for the implicit local user
    Column("password_hash", Text),  # argon2id (pwdlib); NULL: no password login (local, external)
    Column("locale", String(16)),
    Column("created_at", DateTime, nullable=False),
    Column("timezone", String(64)),  # IANA name; NULL: the `timezone` setting
    Column("briefing_hour", Integer),  # 0-23, local; NULL: the `briefing_hour` setting
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("disabled_at", DateTime),
    Column("password_changed_at", DateTime),
)

radars = Table(
    "radars",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("interest", Text),  # the free-text interest statement, any language
    Column("settings", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("user_id", "name", name="uq_radars_user_id_name"),
)

radar_rules = Table(
    "radar_rules",
    metadata,
    Column("radar_id", Integer, ForeignKey("radars.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),  # author | mute_author | keyword | exclude | category | venue
    Column("value_key", String(255), primary_key=True),  # what matching uses (name key, folded phrase, code)
    Column("value", Text, nullable=False),  # as the user wrote it
    Column("orcid", String(32)),
)

radar_seeds = Table(
    "radar_seeds",
    metadata,
    Column("radar_id", Integer, ForeignKey("radars.id", ondelete="CASCADE"), primary_key=True),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("origin", String(64)),  # the file or list it came from
    Column("added_at", DateTime, nullable=False),
)

radar_feedback = Table(
    "radar_feedback",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("radar_id", Integer, ForeignKey("radars.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), index=True),
    Column("action", String(16), nullable=False),  # like | save | dismiss | less_author | less_topic
    Column("value", Text),  # the author or topic for less_*
    Column("created_at", DateTime, nullable=False),
)

radar_shown = Table(
    "radar_shown",
    metadata,
    Column("radar_id", Integer, ForeignKey("radars.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("batch", Integer, nullable=False),
)

paper_embeddings = Table(
    "paper_embeddings",
    metadata,
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("model", String(128), primary_key=True),
    Column("dim", Integer, nullable=False),
    Column("tokens", Integer),  # the window the model read of each paper (NULL: written before 0004)
    Column("vector", LargeBinary, nullable=False),  # float16 little-endian, L2-normalised
    Column("created_at", DateTime, nullable=False),
)

# Objects the migrations add per dialect and the metadata does not describe.
UNMODELLED_TABLES = frozenset({"papers_fts", "papers_fts_data", "papers_fts_idx", "papers_fts_docsize", "papers_fts_config", "papers_fts_content",
                               "data_version_base", "data_version_xacts"})  # the last two: PostgreSQL's data version (0014)
UNMODELLED_COLUMNS = frozenset({("papers", "search_vector")})

# ----------------------------------------------------------------------------- briefings

from sqlalchemy import Float  # noqa: E402 - the briefing table's own import, kept with it

briefings = Table(
    "briefings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("radar_id", Integer, ForeignKey("radars.id", ondelete="CASCADE"), index=True),  # NULL: the whole store
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("lang", String(8), nullable=False),  # zh | en
    Column("paper_hash", String(64), nullable=False),  # sha256 of the ordered paper ids
    Column("paper_ids", JSON, nullable=False),
    Column("kind", String(16), nullable=False),  # llm | extractive
    Column("model", String(128)),  # the LLM's name; NULL for extractive
    Column("analysis", JSON, nullable=False),
    Column("content", JSON, nullable=False),  # the briefing document
    Column("tokens_in", Integer, nullable=False),
    Column("tokens_out", Integer, nullable=False),
    Column("cost", Float, nullable=False),
    Column("fallback_reason", Text),  # why an LLM briefing fell back to extractive
    Column("created_at", DateTime, nullable=False),
    Column("superseded_at", DateTime),  # set when `regenerate` made a newer one
    Index("ix_briefings_lookup", "period_start", "period_end", "lang", "paper_hash"),
)

# ----------------------------------------------------------------------------- the job ledger

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(255), nullable=False, unique=True),  # idempotency key: source + window, radar + period
    Column("name", String(32), nullable=False),  # sources | embed | candidates | brief | deliver
    Column("params", JSON, nullable=False),
    Column("status", String(16), nullable=False, index=True),  # queued | running | done | failed
    Column("attempts", Integer, nullable=False),
    Column("error", Text),  # the last attempt's error
    Column("result", JSON),  # what a done job reports (papers added, briefing id, ...)
    Column("worker", String(128)),  # who holds (or last held) it
    Column("lease_until", DateTime),  # a running job whose lease passed was abandoned: claimed again
    Column("enqueued_at", DateTime),  # when its message was last put on the queue (or is due to be)
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime),
    Column("finished_at", DateTime),
    Column("updated_at", DateTime, nullable=False),
)

# ----------------------------------------------------------------------------- feed tokens

feed_tokens = Table(
    "feed_tokens",
    metadata,
    # the user's secret feed URLs are signed over (user_id, generation); rotating bumps it
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("generation", Integer, nullable=False),
    Column("rotated_at", DateTime, nullable=False),
)

# ----------------------------------------------------------------------------- delivery

delivery_channels = Table(
    "delivery_channels",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # email | slack | discord | feishu | dingtalk | wecom | ntfy | json
    Column("target", Text, nullable=False),  # the address, or the webhook URL
    Column("secret", Text),  # Feishu/DingTalk signing secret (never logged, never shown again in full)
    Column("radar_id", Integer, ForeignKey("radars.id", ondelete="CASCADE"), index=True),  # NULL: all the user's radars
    Column("cadence", String(8), nullable=False),  # daily | weekly
    Column("lang", String(8), nullable=False),  # zh | en
    Column("enabled", Boolean, nullable=False),
    Column("last_error", Text),
    Column("last_error_at", DateTime),
    Column("created_at", DateTime, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("channel_id", Integer, ForeignKey("delivery_channels.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("scope", String(32), nullable=False),  # "all", or "radar:<id>"
    Column("period", String(16), nullable=False),  # a day (2026-12-06) or an ISO week (2026-W49)
    Column("status", String(16), nullable=False),  # pending | sending | committing | sent | failed | unconfirmed
    Column("attempts", Integer, nullable=False),
    Column("error", Text),
    Column("late", Boolean, nullable=False),
    Column("message_id", String(255)),  # the Message-ID of the last attempt (a crash after the send shows in the mail log)
    Column("worker", String(128)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    UniqueConstraint("user_id", "channel_id", "scope", "period", name="uq_deliveries_user_id"),
)

# ----------------------------------------------------------------------------- the reading list

saved_papers = Table(
    "saved_papers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("paper_id", Integer, ForeignKey("papers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("radar_id", Integer, ForeignKey("radars.id", ondelete="SET NULL")),  # where it was saved from
    Column("saved_at", DateTime, nullable=False),
    Column("read_at", DateTime),  # NULL: unread
    Column("note", Text),
    Column("zotero_key", String(16)),  # the item's key in the user's Zotero library, once pushed
    Column("zotero_pushed_at", DateTime),  # pushed (a 412 for a reused write token gives no key)
    UniqueConstraint("user_id", "paper_id", name="uq_saved_papers_user_id_paper_id"),
)

zotero_links = Table(
    "zotero_links",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("library_type", String(8), nullable=False),  # user | group
    Column("library_id", String(32), nullable=False),
    Column("api_key", Text, nullable=False),  # never shown back in full, never logged
    Column("updated_at", DateTime, nullable=False),
)

# ----------------------------------------------------------------------------- stored rankings

# the corpus signature a stored ranking's version reads on every view: max(modified_at) by index
Index("ix_papers_modified_at", papers.c.modified_at)
# A day's window (announced or published since) reads these by range, which implies IS NOT NULL:
# only the papers that have the date are indexed (migration 0015), as an OAI-PMH record has neither.
for _name in ("announced_on", "published_on"):
    _index_where_set(_name)

radar_rankings = Table(
    "radar_rankings",
    metadata,
    Column("radar_id", Integer, ForeignKey("radars.id", ondelete="CASCADE"), primary_key=True),
    Column("period", String(16), primary_key=True),  # an ISO day (the day's papers) or "all"
    Column("version", String(64), nullable=False),  # hash of the inputs: radar, feedback, corpus, model
    Column("model", String(128)),  # the embedding model ranked with (NULL: text and rules only)
    Column("paper_ids", LargeBinary, nullable=False),  # int64 little-endian, best first
    Column("scores", LargeBinary, nullable=False),  # float32 little-endian
    Column("tiers", LargeBinary, nullable=False),  # int8
    Column("reasons", JSON, nullable=False),  # {paper id: [[kind, text, weight], ...]} for the explained head
    Column("computed_at", DateTime, nullable=False),
)

# ----------------------------------------------------------------------------- accounts

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # sha256 hex of the cookie's random token
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
    Column("address", String(64)),
    Column("user_agent", String(255)),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex of the secret
    Column("name", String(128), nullable=False),
    Column("scope", String(8), nullable=False),  # read | write
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime),
    Column("revoked_at", DateTime),
)

invitations = Table(
    "invitations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("email", String(255), nullable=False),
    Column("invited_by", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("is_admin", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("used_at", DateTime),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime, nullable=False, index=True),
    Column("actor_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),  # NULL: the CLI, the system
    Column("action", String(64), nullable=False),  # login | login_failed | logout | user_created | ...
    Column("target", String(255)),
    Column("details", JSON, nullable=False),
    Column("address", String(64)),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime, nullable=False),
    Column("email", String(255), nullable=False, index=True),  # as typed, lower-cased (also unknown ones)
    Column("address", String(64), index=True),
    Column("succeeded", Boolean, nullable=False),
)

# ----------------------------------------------------------------------------- the data version

# Tables whose writes leave the store's data version (store/data_version.py) alone on PostgreSQL:
# no kept page reads them, and they are written all the time (the job ledger by every job, the
# sign-in records as sessions and tokens are used), so watching them would make every page a miss.
# Every other table carries the `data_version` trigger (migration 0014; a new table's migration
# adds it: tests/test_data_version.py and `academichub db check` tell when one is missing).
UNWATCHED_TABLES = frozenset({"jobs", "sessions", "api_tokens", "login_attempts", "audit_log"})
