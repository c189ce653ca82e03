"""The store's data version on PostgreSQL (store/data_version.py): a count of the committed
transactions that wrote a table pages read, kept by this database alone.

A statement-level trigger on each such table adds the writing transaction's id to
`data_version_xacts` (once per transaction: a transaction-local setting remembers it; ON CONFLICT
DO NOTHING besides), so the row commits or rolls back with the write. Rows are only ever inserted
with a new id, so writers never wait on each other. The token is `data_version_base.n` plus the
number of rows; compaction moves rows into `n` in one transaction. `epoch` is drawn once, so a
database made again (or this migration undone and redone) never repeats an earlier token.

Left out (written without changing any page, or on every request): the job ledger (`jobs`), and
the sign-in records `sessions` (touched as a session is used), `api_tokens` (likewise),
`login_attempts` and `audit_log`. A table added later needs the trigger in its own migration
(tests/test_data_version.py fails otherwise; `academichub db check` reports it).
SQLite: nothing (its `PRAGMA data_version` is exact already).

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

WATCHED = (
    "announcements", "briefings", "deliveries", "delivery_channels", "feed_tokens", "harvests", "http_validators",
    "invitations", "paper_authors", "paper_embeddings", "paper_identifiers", "paper_relations", "paper_subjects",
    "papers", "radar_feedback", "radar_rankings", "radar_rules", "radar_seeds", "radar_shown", "radars",
    "saved_papers", "source_records", "sources", "users", "zotero_links",
)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # the function names its table with the schema it was made in: a writer's search_path does not matter
    schema = _quoted(bind.exec_driver_sql("SELECT current_schema()").scalar_one())
    op.execute("CREATE TABLE data_version_base (id smallint PRIMARY KEY CHECK (id = 1), epoch text NOT NULL, "
               "n bigint NOT NULL)")
    op.execute("INSERT INTO data_version_base (id, epoch, n) VALUES (1, replace(gen_random_uuid()::text, '-', ''), 0)")
    # small and churned by compaction: vacuumed after a few hundred dead rows, whatever its size
    # xid: pg_current_xact_id(), 64 bits with the epoch, never reused
    op.execute("CREATE TABLE data_version_xacts (xid bigint PRIMARY KEY) "
               "WITH (autovacuum_vacuum_threshold = 200, autovacuum_vacuum_scale_factor = 0)")
    op.execute(f"""
CREATE FUNCTION data_version_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    xact text := pg_current_xact_id()::text;
BEGIN
    IF current_setting('academichub.data_version_xact', true) IS DISTINCT FROM xact THEN
        INSERT INTO {schema}.data_version_xacts (xid) VALUES (xact::bigint) ON CONFLICT DO NOTHING;
        PERFORM set_config('academichub.data_version_xact', xact, true);
    END IF;
    RETURN NULL;
END
$$""")
    for table in WATCHED:
        op.execute(f"CREATE TRIGGER data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {_quoted(table)} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION data_version_count()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in WATCHED:
        op.execute(f"DROP TRIGGER IF EXISTS data_version ON {_quoted(table)}")
    op.execute("DROP FUNCTION data_version_count()")
    op.execute("DROP TABLE data_version_xacts")
    op.execute("DROP TABLE data_version_base")
