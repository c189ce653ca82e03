"""Ranking papers for a radar: embeddings, statements, scores."""
