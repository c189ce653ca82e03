"""Alembic environment: always driven from `academichub.store.database.migrate`, which hands in
an open connection, so the same code path serves the CLI, the server and the tests."""

from __future__ import annotations

from alembic import context

from academichub.store.schema import UNMODELLED_COLUMNS, UNMODELLED_TABLES, metadata


def include_object(obj, name, type_, reflected, compare_to):
    if type_ == "table" and name in UNMODELLED_TABLES:
        return False
    if type_ == "column" and (obj.table.name, name) in UNMODELLED_COLUMNS:
        return False
    if type_ == "index" and name and name.startswith(("ix_papers_search_vector", "papers_fts")):
        return False
    return True


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    include_object=include_object,
)
with context.begin_transaction():
    context.run_migrations()
