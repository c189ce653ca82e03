"""PostgreSQL: the papers' `search_vector` becomes a column its writers may fill, so a bulk
import can have a second connection (another backend, another core) compute the vectors of the
next batch while the import's own backend writes this one. Computing the vector is most of a
paper's insert (docs/design.md, "PostgreSQL: the search vector from a second backend").

One definition of the vector, the SQL function `papers_search_vector(title, abstract,
authors_text)`, serves both: the bulk import asks it for vectors ahead, and a row trigger fills
the column whenever a writer leaves it NULL on insert or changes a searched text on update, so
every other writer (a day's feed, an edit, a merge) stays as it was and no vector is ever stale.
The values kept by DROP EXPRESSION are the same function's. SQLite: nothing (FTS5).

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# 0001's generated column, word for word
_VECTOR = (
    "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(abstract, '')), 'B') || "
    "setweight(to_tsvector('simple', coalesce(authors_text, '')), 'C')"
)
_SEARCHED_CHANGED = (
    "NEW.search_vector IS NULL OR NEW.title IS DISTINCT FROM OLD.title "
    "OR NEW.abstract IS DISTINCT FROM OLD.abstract OR NEW.authors_text IS DISTINCT FROM OLD.authors_text"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION papers_search_vector(title text, abstract text, authors_text text) RETURNS tsvector "
        f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {_VECTOR} $$"
    )
    # the trigger finds the function in the schema both were made in, whatever a writer's search_path
    op.execute("CREATE FUNCTION papers_search_vector_fill() RETURNS trigger LANGUAGE plpgsql "
               "SET search_path FROM CURRENT AS $$ BEGIN "
               "NEW.search_vector := papers_search_vector(NEW.title, NEW.abstract, NEW.authors_text); "
               "RETURN NEW; END $$")
    op.execute("ALTER TABLE papers ALTER COLUMN search_vector DROP EXPRESSION")
    op.execute("CREATE TRIGGER papers_search_vector_insert BEFORE INSERT ON papers FOR EACH ROW "
               "WHEN (NEW.search_vector IS NULL) EXECUTE FUNCTION papers_search_vector_fill()")
    op.execute("CREATE TRIGGER papers_search_vector_update BEFORE UPDATE ON papers FOR EACH ROW "
               f"WHEN ({_SEARCHED_CHANGED}) EXECUTE FUNCTION papers_search_vector_fill()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER papers_search_vector_update ON papers")
    op.execute("DROP TRIGGER papers_search_vector_insert ON papers")
    op.execute("DROP FUNCTION papers_search_vector_fill()")
    op.execute("DROP FUNCTION papers_search_vector(text, text, text)")
    op.execute("ALTER TABLE papers DROP COLUMN search_vector")  # drops its GIN index too
    op.execute(f"ALTER TABLE papers ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({_VECTOR}) STORED")
    op.execute("CREATE INDEX ix_papers_search_vector ON papers USING GIN (search_vector)")
