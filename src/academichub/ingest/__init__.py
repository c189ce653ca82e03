"""From parsed records to stored papers: format detection, dedup and merge (a pure decider),
and the pipeline that does the I/O around it."""
