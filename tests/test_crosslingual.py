"""The shipped arXiv taxonomy and the zh->en glossary, and reading a Chinese statement in English."""

from __future__ import annotations

import re
import tomllib

from academichub.rank.crosslingual import has_han, load_glossary, load_taxonomy, to_english, translate


def test_taxonomy_is_complete_and_bilingual():
    taxonomy = load_taxonomy()
    assert len(taxonomy) >= 155
    for code, entry in taxonomy.items():
        assert entry["name"] and entry["description"] and entry["group"], code
        assert has_han(entry["name_zh"]) and has_han(entry["description_zh"]), code
        if "alias_of" in entry:
            assert entry["alias_of"] in taxonomy and "alias_of" not in taxonomy[entry["alias_of"]], code
    for code in ("cs.LG", "cs.CV", "quant-ph", "hep-th", "math.AP", "astro-ph.HE", "econ.EM", "q-bio.NC", "stat.ML"):
        assert code in taxonomy
    assert taxonomy["cs.SY"]["alias_of"] == "eess.SY"


def test_every_category_of_the_recorded_day_is_in_the_taxonomy(shared_data):
    feed = (shared_data / "arxiv/rss/2024-11-28-all-archives.xml").read_text(encoding="utf-8")
    codes = set(re.findall(r"<category>([^<]+)</category>", feed))
    assert len(codes) > 100
    assert codes <= set(load_taxonomy())


def test_glossary_is_a_clean_mapping():
    from importlib import resources

    raw = tomllib.loads(resources.files("academichub").joinpath("data", "zh_en_terms.toml").read_text(encoding="utf-8"))
    seen: dict[str, str] = {}
    for table in raw.values():
        for zh, en in table.items():
            assert has_han(zh) and en.strip() and not has_han(en), zh
            assert seen.setdefault(zh, en) == en, f"{zh}: two tables disagree"
    assert len(seen) >= 1500
    assert load_glossary()["机器学习"] == ("machine learning",)


def test_translate_longest_match_keeps_latin_words_and_drops_the_rest():
    t = translate("我关注大语言模型的推理与对齐，以及 Transformer 在X射线图像上的应用。")
    assert t.terms[:4] == ["large language model", "LLM", "inference", "reasoning"]
    assert "Transformer" in t.terms and "X-rays" in t.terms and "application" in t.terms
    assert not has_han(t.english)
    assert 0.4 < t.coverage < 1.0


def test_english_statements_pass_through():
    assert to_english("Graph neural networks for molecules") == "Graph neural networks for molecules"
    assert to_english("") == ""
    assert "quantum error correction" in to_english("量子纠错")
