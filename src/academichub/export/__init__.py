"""Papers out: BibTeX, RIS and CSL-JSON writers (`formats`), the records they write (`records`),
and Zotero Web API items and pushes (`zotero`). The mirror of ingest/library_import.py: every
field that importer reads is written so that it reads it back the same."""
