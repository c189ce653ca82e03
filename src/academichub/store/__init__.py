"""Schema, migrations and queries. Knows PaperData rows, never upstream formats or the web."""
