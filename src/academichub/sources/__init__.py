"""One module per upstream: fetch, then parse into PaperData. Nothing here touches the database."""
