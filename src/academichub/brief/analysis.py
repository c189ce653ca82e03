"""The deterministic analysis behind every briefing, and the LLM's input: themes, cross-domain
links, picks, and what changed against the previous period. Same papers and vectors in, same
analysis out (no randomness without a fixed seed); JSON-serialisable so it is stored with the
briefing and reused as the next period's "previous".

- Themes: Ward clustering of the unit vectors (one dendrogram, cut at k = 3..7), k chosen by the
  cosine silhouette (ties: fewer themes). Members are ordered by closeness to their centroid.
- Labels: class-based TF-IDF (c-TF-IDF, as BERTopic) over each theme's titles and abstracts,
  on 1-3-word phrases that never span a stop word, weighted by how many of the theme's papers
  use the phrase; a phrase inside a longer one that the same papers use gives way to it. Phrases
  keep their most frequent written form ("EEG", "graph neural networks") and stay English in a
  Chinese briefing.
- Cross-domain links: pairs of papers of different fields (arXiv archive, journal subject or
  venue) whose vectors' cosine reaches a threshold that depends on the vectors (sentence
  embeddings are denser than TF-IDF/LSA), strongest first, at most two links per paper.
- Changes: themes matched one-to-one with the previous period's (centroid cosine when both used
  the same embedding model, else overlap of their key-phrase words): new, grew, shrank, steady,
  faded, by share of the period's papers.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Iterable

import numpy as np

from .background import specificity
from .inputs import LSA_MODEL, BriefPaper
from .text import paper_text, phrases as phrase_candidates, plain, strip_math

ANALYSIS_VERSION = 1
K_MIN, K_MAX = 3, 7
DEFAULT_PAPERS = 40
LINK_THRESHOLD_DENSE = 0.50  # sentence embeddings (all-MiniLM-L6-v2 and the like)
LINK_THRESHOLD_LSA = 0.08  # TF-IDF/LSA vectors of the period's own papers
MAX_LINKS = 8
LINKS_PER_PAPER = 2
LABEL_PHRASES = 3
THEME_PHRASES = 8
MATCH_CENTROID = 0.80  # cosine of two themes' centroids (same embedding model)
MATCH_PHRASES = 0.25  # Jaccard of two themes' key-phrase words
SHARE_CHANGE = 0.05  # a theme grew/shrank when its share of the papers moved by this much


@dataclass(slots=True)
class Theme:
    label: str
    phrases: list[str]
    members: list[int]  # paper numbers, closest to the centroid first
    fields: dict[str, int]  # field -> papers
    cohesion: float  # mean cosine of the members to their centroid
    centroid: list[float] | None = None


@dataclass(slots=True)
class Link:
    a: int  # paper numbers, a < b
    b: int
    field_a: str
    field_b: str
    similarity: float
    shared: list[str]  # phrases both papers use, rarest first
    theme_a: int  # theme indexes (0-based)
    theme_b: int


@dataclass(slots=True)
class Change:
    kind: str  # new | grew | shrank | steady | faded
    label: str
    theme: int | None  # index of the current theme (None for faded)
    previous_label: str | None
    before: int  # papers of the matched previous theme
    after: int
    before_share: float
    after_share: float
    phrases: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Analysis:
    version: int
    vector_model: str | None
    papers: list[dict]  # BriefPaper.ref() of every input paper, in order
    themes: list[Theme]
    links: list[Link]
    picks: list[int]  # paper numbers
    changes: list[Change]
    has_previous: bool
    fields: dict[str, int]
    silhouette: dict[str, float]  # k -> score of the cuts tried
    link_threshold: float

    @property
    def n_papers(self) -> int:
        return len(self.papers)

    def theme_of(self, n: int) -> int | None:
        for index, theme in enumerate(self.themes):
            if n in theme.members:
                return index
        return None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Analysis:
        data = dict(data)
        data["themes"] = [Theme(**t) for t in data.get("themes", [])]
        data["links"] = [Link(**link) for link in data.get("links", [])]
        data["changes"] = [Change(**c) for c in data.get("changes", [])]
        return cls(**data)


# ----------------------------------------------------------------------------- clustering


def _matrix(items: list[BriefPaper]) -> np.ndarray:
    vectors = [p.embedding for p in items]
    if any(v is None for v in vectors):
        from .inputs import set_lsa_vectors

        set_lsa_vectors(items)
        vectors = [p.embedding for p in items]
    matrix = np.vstack([np.asarray(v, dtype=np.float64) for v in vectors])
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def cluster(matrix: np.ndarray, k_min: int = K_MIN, k_max: int = K_MAX) -> tuple[np.ndarray, dict[str, float]]:
    """Cluster labels 0..k-1 and the silhouette of every k tried. Ward linkage on unit vectors
    (Euclidean there is a monotone function of cosine); k by cosine silhouette, ties to fewer."""
    n = matrix.shape[0]
    if n == 0:
        return np.zeros(0, dtype=int), {}
    upper = min(k_max, n - 1)
    if n < 4 or upper < k_min:
        return np.zeros(n, dtype=int), {}
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.metrics import silhouette_score

    tree = linkage(matrix, method="ward", optimal_ordering=False)
    scores: dict[str, float] = {}
    best: tuple[float, int, np.ndarray] | None = None
    for k in range(k_min, upper + 1):
        labels = fcluster(tree, t=k, criterion="maxclust") - 1
        if len(set(labels.tolist())) < 2:
            continue
        score = float(silhouette_score(matrix, labels, metric="cosine"))
        scores[str(k)] = round(score, 4)
        if best is None or score > best[0] + 1e-9:
            best = (score, k, labels)
    if best is None:
        return np.zeros(n, dtype=int), scores
    return best[2], scores


# ----------------------------------------------------------------------------- key phrases


@dataclass(slots=True)
class _Phrases:
    vocabulary: list[str]
    counts: object  # scipy sparse, papers x phrases
    present: object  # same, 0/1

    @classmethod
    def of(cls, texts: list[str]) -> _Phrases:
        from sklearn.feature_extraction.text import CountVectorizer

        vectorizer = CountVectorizer(analyzer=phrase_candidates, min_df=1)
        try:
            counts = vectorizer.fit_transform(texts).tocsr()
        except ValueError:  # no words at all
            import scipy.sparse as sp

            counts = sp.csr_matrix((len(texts), 0))
            return cls([], counts, counts)
        present = counts.copy()
        present.data[:] = 1
        return cls(list(vectorizer.get_feature_names_out()), counts, present)


def _contains(longer: str, shorter: str) -> bool:
    return longer != shorter and f" {shorter} " in f" {longer} "


def _singular(term: str) -> str:
    """A phrase with its last word in the singular, for spotting "model" / "models" twins."""
    head, _, last = term.rpartition(" ")
    if len(last) > 3 and last.endswith("ies"):
        last = last[:-3] + "y"
    elif len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is")):
        last = last[:-1]
    return f"{head} {last}".strip()


def _initials(term: str) -> str:
    return "".join(word[0] for word in term.split())


def ctfidf_phrases(docs: _Phrases, groups: list[list[int]], top: int = THEME_PHRASES) -> list[list[str]]:
    """The key phrases of each group of papers (row indexes), best first.

    The score is c-TF-IDF, tf(t, c) / words(c) * log(1 + A / f(t)) with A the mean words per group
    and f(t) the phrase's count over all groups, times: the square root of the share of the
    group's papers that use the phrase (a label speaks for the group, not for one paper), how
    much more the group's papers use it than the others (share inside / (inside + outside)), how
    specific it is in science writing at large (background.specificity), and 1 + 0.5 per extra word (readable phrases over single words). A phrase needs two of the
    group's papers (one in a group of one). A phrase inside a longer candidate that the same
    papers use about as often gives way to it, and so does its acronym ("MW" to "Milky Way");
    singular/plural twins count once."""
    if not docs.vocabulary or not groups:
        return [[] for _ in groups]
    counts, present = docs.counts, docs.present
    total_papers = present.shape[0]
    tf = np.vstack([np.asarray(counts[g].sum(axis=0)).ravel() for g in groups]).astype(np.float64)
    df = np.vstack([np.asarray(present[g].sum(axis=0)).ravel() for g in groups]).astype(np.float64)
    df_all = df.sum(axis=0)
    words_per_group = tf.sum(axis=1, keepdims=True)
    words_per_group[words_per_group == 0] = 1.0
    average = float(tf.sum(axis=1).mean()) or 1.0
    frequency = tf.sum(axis=0)
    frequency[frequency == 0] = 1.0
    idf = np.log1p(average / frequency)
    lengths = np.array([term.count(" ") + 1 for term in docs.vocabulary], dtype=np.float64)
    generic = np.array([specificity(term) for term in docs.vocabulary], dtype=np.float64)
    result: list[list[str]] = []
    for index, group in enumerate(groups):
        size = len(group)
        inside = df[index] / max(size, 1)
        others = total_papers - size
        outside = (df_all - df[index]) / others if others else np.zeros_like(inside)
        distinct = np.divide(inside, inside + outside, out=np.zeros_like(inside), where=(inside + outside) > 0)
        score = tf[index] / words_per_group[index] * idf * np.sqrt(inside) * distinct * generic * (1.0 + 0.5 * (lengths - 1))
        minimum_df = 2 if size >= 2 else 1
        candidates = np.flatnonzero((df[index] >= minimum_df) & (score > 0))
        if not len(candidates):
            candidates = np.flatnonzero(score > 0)
        order = sorted(candidates.tolist(), key=lambda t: (-score[t], docs.vocabulary[t]))
        pool = order[: top * 8]
        keep: list[str] = []
        seen: set[str] = set()
        acronyms = {_initials(docs.vocabulary[o]) for o in pool if " " in docs.vocabulary[o]}
        for t in pool:
            term = docs.vocabulary[t]
            absorbed = term in acronyms or any(
                _contains(docs.vocabulary[o], term) and df[index][o] >= df[index][t] - 1 and tf[index][o] >= 0.6 * tf[index][t]
                for o in pool
            )
            if absorbed or _singular(term) in seen:
                continue
            if any(_contains(term, k) or _contains(k, term) for k in keep):
                continue
            keep.append(term)
            seen.add(_singular(term))
            if len(keep) == top:
                break
        result.append(keep)
    return result


def surface_form(phrase: str, texts: Iterable[str]) -> str:
    """The phrase as the papers write it most often ("EEG", "Gaussian processes"); a capital
    that only starts a sentence or a title does not count against the lower-case form."""
    pattern = re.compile(r"(?<![\w-])" + r"\s+".join(re.escape(w) for w in phrase.split()) + r"(?![\w-])", re.I)
    forms: Counter[str] = Counter()
    for text in texts:
        for match in pattern.finditer(strip_math(text)):
            forms[" ".join(match.group(0).split())] += 1
    if not forms:
        return phrase
    # Title Case and sentence-initial capitals fold into the lower-case form when it occurs.
    folded: Counter[str] = Counter()
    for form, count in forms.items():
        lower_first = form[:1].lower() + form[1:]
        if form != phrase and form.lower() == phrase and (form.istitle() or lower_first == phrase) and phrase in forms:
            folded[phrase] += count
        else:
            folded[form] += count
    return sorted(folded.items(), key=lambda item: (-item[1], item[0] != phrase, item[0]))[0][0]


# ----------------------------------------------------------------------------- the analysis


def analyze(
    papers: list[BriefPaper],
    previous: Analysis | None = None,
    *,
    link_threshold: float | None = None,
    k_min: int = K_MIN,
    k_max: int = K_MAX,
) -> Analysis:
    items = list(papers)
    vector_model = items[0].embedding_model if items else None
    if items and (any(p.embedding is None for p in items) or len({p.embedding_model for p in items}) != 1):
        from .inputs import set_lsa_vectors

        set_lsa_vectors(items)
        vector_model = LSA_MODEL
    if link_threshold is None:
        link_threshold = LINK_THRESHOLD_LSA if vector_model == LSA_MODEL else LINK_THRESHOLD_DENSE
    fields = dict(sorted(Counter(p.field for p in items).items(), key=lambda kv: (-kv[1], kv[0])))
    if not items:
        return Analysis(ANALYSIS_VERSION, vector_model, [], [], [], [], _changes([], 0, previous, None),
                        previous is not None, {}, {}, link_threshold)
    matrix = _matrix(items)
    labels, scores = cluster(matrix, k_min, k_max)
    texts = [paper_text(p.title, p.abstract) for p in items]
    docs = _Phrases.of(texts)

    groups_raw: dict[int, list[int]] = {}
    for row, label in enumerate(labels.tolist()):
        groups_raw.setdefault(label, []).append(row)
    groups = sorted(groups_raw.values(), key=lambda rows: (-len(rows), min(rows)))
    key_phrases = ctfidf_phrases(docs, groups)
    similarity = matrix @ matrix.T
    themes: list[Theme] = []
    theme_of_row: dict[int, int] = {}
    keep_centroid = vector_model != LSA_MODEL
    for index, rows in enumerate(groups):
        centroid = matrix[rows].mean(axis=0)
        norm = np.linalg.norm(centroid)
        centroid = centroid / norm if norm else centroid
        closeness = matrix[rows] @ centroid
        order = sorted(range(len(rows)), key=lambda i: (-round(float(closeness[i]), 6), rows[i]))
        members_rows = [rows[i] for i in order]
        for row in rows:
            theme_of_row[row] = index
        member_texts = [plain(items[r].abstract) for r in members_rows] + [plain(items[r].title) for r in members_rows]
        shown = [surface_form(ph, member_texts) for ph in key_phrases[index]]
        themes.append(
            Theme(
                label=", ".join(shown[:LABEL_PHRASES]) or items[members_rows[0]].title,
                phrases=shown,
                members=[items[r].n for r in members_rows],
                fields=dict(sorted(Counter(items[r].field for r in rows).items(), key=lambda kv: (-kv[1], kv[0]))),
                cohesion=round(float(closeness.mean()), 4),
                centroid=[round(float(x), 5) for x in centroid] if keep_centroid else None,
            )
        )
    links = _links(items, similarity, docs, theme_of_row, link_threshold)
    picks = [theme.members[0] for theme in themes]
    changes = _changes(themes, len(items), previous, vector_model)
    return Analysis(
        version=ANALYSIS_VERSION,
        vector_model=vector_model,
        papers=[p.ref() for p in items],
        themes=themes,
        links=links,
        picks=picks,
        changes=changes,
        has_previous=previous is not None,
        fields=fields,
        silhouette=scores,
        link_threshold=link_threshold,
    )


def _links(items: list[BriefPaper], similarity: np.ndarray, docs: _Phrases, theme_of_row: dict[int, int],
           threshold: float) -> list[Link]:
    n = len(items)
    candidates: list[tuple[float, int, int]] = []
    for i in range(n):
        for j in range(i + 1, n):
            if items[i].field != items[j].field and similarity[i, j] >= threshold:
                candidates.append((round(float(similarity[i, j]), 6), i, j))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    used: Counter[int] = Counter()
    links: list[Link] = []
    weights = _phrase_weights(docs) if docs.vocabulary else None
    for score, i, j in candidates:
        if used[i] >= LINKS_PER_PAPER or used[j] >= LINKS_PER_PAPER:
            continue
        used[i] += 1
        used[j] += 1
        shared = _shared_phrases(items, i, j, docs, weights) if docs.vocabulary else []
        links.append(
            Link(a=items[i].n, b=items[j].n, field_a=items[i].field, field_b=items[j].field, similarity=round(score, 4),
                 shared=shared, theme_a=theme_of_row[i], theme_b=theme_of_row[j])
        )
        if len(links) == MAX_LINKS:
            break
    return links


def _phrase_weights(docs: _Phrases):
    """Per paper and phrase: (1 + log tf) * idf over the input papers * background specificity
    * (1 + 0.5 per extra word)."""
    counts = docs.counts.astype(np.float64).tocsr(copy=True)
    counts.data = 1.0 + np.log(counts.data)
    papers_using = np.asarray(docs.present.sum(axis=0)).ravel()
    idf = np.log((1.0 + counts.shape[0]) / (1.0 + papers_using)) + 1.0
    lengths = np.array([term.count(" ") + 1 for term in docs.vocabulary], dtype=np.float64)
    generic = np.array([specificity(term) for term in docs.vocabulary], dtype=np.float64)
    return counts.multiply(idf * generic * (1.0 + 0.5 * (lengths - 1))).tocsr()


def _shared_phrases(items: list[BriefPaper], i: int, j: int, docs: _Phrases, weights, top: int = 4) -> list[str]:
    """The phrases two papers share, by the smaller of their two weights (a phrase both lean on)."""
    a = weights[i].toarray().ravel()
    b = weights[j].toarray().ravel()
    both = np.minimum(a, b)
    order = sorted(np.flatnonzero(both > 0).tolist(), key=lambda t: (-both[t], docs.vocabulary[t]))
    shared: list[str] = []
    seen: set[str] = set()
    for t in order:
        term = docs.vocabulary[t]
        if _singular(term) in seen or any(_contains(k, term) or _contains(term, k) for k in shared):
            continue
        shared.append(term)
        seen.add(_singular(term))
        if len(shared) == top:
            break
    texts = [plain(items[i].abstract), plain(items[j].abstract), plain(items[i].title), plain(items[j].title)]
    return [surface_form(term, texts) for term in shared]


def _phrase_words(theme: Theme) -> set[str]:
    return {w for ph in theme.phrases for w in ph.lower().split()}


def _theme_similarity(current: Theme, previous: Theme, by_centroid: bool) -> float:
    if by_centroid and current.centroid and previous.centroid and len(current.centroid) == len(previous.centroid):
        return float(np.dot(np.asarray(current.centroid), np.asarray(previous.centroid)))
    a, b = _phrase_words(current), _phrase_words(previous)
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _changes(themes: list[Theme], total: int, previous: Analysis | None, vector_model: str | None) -> list[Change]:
    if previous is None:
        return []
    by_centroid = (
        vector_model is not None and vector_model != LSA_MODEL and previous.vector_model == vector_model
        and all(t.centroid for t in themes) and all(t.centroid for t in previous.themes)
    )
    threshold = MATCH_CENTROID if by_centroid else MATCH_PHRASES
    pairs = sorted(
        ((round(_theme_similarity(cur, prev, by_centroid), 6), i, j)
         for i, cur in enumerate(themes) for j, prev in enumerate(previous.themes)),
        key=lambda p: (-p[0], p[1], p[2]),
    )
    matched: dict[int, int] = {}
    taken: set[int] = set()
    for score, i, j in pairs:
        if score < threshold:
            break
        if i in matched or j in taken:
            continue
        matched[i] = j
        taken.add(j)
    prev_total = max(previous.n_papers, 1)
    total = max(total, 1)
    changes: list[Change] = []
    for i, theme in enumerate(themes):
        after = len(theme.members)
        if i not in matched:
            changes.append(Change("new", theme.label, i, None, 0, after, 0.0, round(after / total, 4), theme.phrases[:3]))
            continue
        prev = previous.themes[matched[i]]
        before = len(prev.members)
        before_share, after_share = before / prev_total, after / total
        if after_share - before_share >= SHARE_CHANGE and after > before:
            kind = "grew"
        elif before_share - after_share >= SHARE_CHANGE and after < before:
            kind = "shrank"
        else:
            kind = "steady"
        changes.append(Change(kind, theme.label, i, prev.label, before, after, round(before_share, 4),
                              round(after_share, 4), theme.phrases[:3]))
    for j, prev in enumerate(previous.themes):
        if j not in taken:
            before = len(prev.members)
            changes.append(Change("faded", prev.label, None, prev.label, before, 0, round(before / prev_total, 4), 0.0,
                                  prev.phrases[:3]))
    order = {"new": 0, "grew": 1, "shrank": 2, "faded": 3, "steady": 4}
    changes.sort(key=lambda c: (order[c.kind], -(c.after or c.before)))
    return changes


__all__ = ["Analysis", "Change", "Link", "Theme", "analyze", "cluster", "ctfidf_phrases", "surface_form"]
