"""python -m benchmarks.relevance: the relevance benchmark (see README.md)."""

from .runner import main

main()
