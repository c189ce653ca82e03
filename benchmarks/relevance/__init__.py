"""The relevance benchmark: datasets, protocols, metrics and baselines for ranking papers for a
radar (seed papers and/or an interest statement). Run `python -m benchmarks.relevance`."""
