"""Which of a period's papers an all-papers briefing reads: a sample that covers the period.

A briefing analyses `briefing_papers` papers (40) of a day that holds 1,500. Taking the first 40
in storage order briefs 2.7% of the day, mostly one or two archives. Instead the period's papers
are clustered (k-means on their vectors, k = limit / PAPERS_PER_CLUSTER), every cluster gets
seats in proportion to its size (largest remainder, at least one each, so a small theme of the
day is still represented), and each cluster sends its most central papers (closest to its
centroid: the ones that say what the cluster is about). The briefing's own analysis then finds
themes in a sample that has every theme of the period in it.

Vectors: the stored embeddings of one model when every paper has one, else TF-IDF + LSA of the
papers' titles and abstracts (a fixed seed: the same papers give the same sample). Pure: rows in,
row indexes out; the store reads are in brief/inputs.py and the caching in app/briefings.py."""

from __future__ import annotations

import numpy as np

PAPERS_PER_CLUSTER = 4  # k = limit / this: ten clusters for a briefing of 40 papers
SAMPLE_DIM = 100  # LSA components of the TF-IDF vectors
SEED = 0


def text_vectors(texts: list[str], dim: int = SAMPLE_DIM) -> np.ndarray:
    """TF-IDF (words, English stop words out, sublinear tf) reduced by truncated
    SVD to `dim` components, rows L2-normalised. Fast enough for a week of papers (10,000)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from threadpoolctl import threadpool_limits

    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    vectorizer = TfidfVectorizer(stop_words="english", min_df=2 if len(texts) > 50 else 1,
                                 sublinear_tf=True, dtype=np.float64)
    try:
        tfidf = vectorizer.fit_transform(texts)
    except ValueError:  # no words at all
        return np.zeros((len(texts), 1), dtype=np.float32)
    components = min(dim, tfidf.shape[0] - 1, tfidf.shape[1] - 1)
    if components < 2:
        return unit_rows(tfidf.toarray())
    with threadpool_limits(1):  # BLAS threads on a busy machine cost 30x: one thread is 0.1 s a day
        reduced = TruncatedSVD(n_components=components, algorithm="randomized", n_iter=5,
                               random_state=SEED).fit_transform(tfidf)
    return unit_rows(reduced)


def unit_rows(matrix) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def seats(sizes: list[int], limit: int) -> list[int]:
    """Seats per cluster in proportion to its size, summing to min(limit, papers): every
    non-empty cluster gets one first (when there are seats enough), the rest by largest
    remainder (ties: the bigger cluster, then the earlier one); never more than a cluster has."""
    total = sum(sizes)
    limit = min(limit, total)
    result = [0] * len(sizes)
    if limit <= 0:
        return result
    non_empty = [i for i, size in enumerate(sizes) if size > 0]
    if len(non_empty) > limit:  # more clusters than seats: the biggest clusters get one
        for i in sorted(non_empty, key=lambda i: (-sizes[i], i))[:limit]:
            result[i] = 1
        return result
    for i in non_empty:
        result[i] = 1
    left = limit - len(non_empty)
    spare = [sizes[i] - 1 for i in range(len(sizes))]
    spare_total = sum(max(s, 0) for s in spare)
    if left and spare_total:
        quotas = [left * max(s, 0) / spare_total for s in spare]
        floors = [min(int(q), max(s, 0)) for q, s in zip(quotas, spare)]
        for i, f in enumerate(floors):
            result[i] += f
        left -= sum(floors)
        order = sorted(range(len(sizes)), key=lambda i: (-(quotas[i] - floors[i]), -sizes[i], i))
        while left > 0:
            moved = False
            for i in order:
                if left and result[i] < sizes[i]:
                    result[i] += 1
                    left -= 1
                    moved = True
            if not moved:
                break
    return result


def covering_sample(vectors: np.ndarray, limit: int, *, per_cluster: int = PAPERS_PER_CLUSTER) -> list[int]:
    """Row indexes of at most `limit` rows that cover the rows' clusters, largest cluster first
    and, within one, the most central row first. All rows (in order) when there are no more
    than `limit`. Deterministic: k-means++ with a fixed seed."""
    n = int(vectors.shape[0]) if vectors is not None else 0
    if limit <= 0 or n == 0:
        return []
    if n <= limit:
        return list(range(n))
    matrix = unit_rows(vectors).astype(np.float64)
    k = max(1, min(n, round(limit / max(per_cluster, 1))))
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        labels = KMeans(n_clusters=k, n_init=4, random_state=SEED).fit_predict(matrix)
    groups = [np.flatnonzero(labels == c) for c in range(k)]
    groups = [g for g in groups if len(g)]
    groups.sort(key=lambda rows: (-len(rows), int(rows[0])))
    ranked: list[list[int]] = []
    for rows in groups:
        centroid = matrix[rows].mean(axis=0)
        norm = np.linalg.norm(centroid)
        centroid = centroid / norm if norm else centroid
        closeness = matrix[rows] @ centroid
        ranked.append([int(rows[i]) for i in sorted(range(len(rows)), key=lambda i: (-round(float(closeness[i]), 6), int(rows[i])))])
    counts = seats([len(rows) for rows in ranked], limit)
    return [row for rows, count in zip(ranked, counts) for row in rows[:count]]


__all__ = ["covering_sample", "seats", "text_vectors", "unit_rows"]
