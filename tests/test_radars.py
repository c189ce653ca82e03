"""The radar store on a real migrated store: rules keyed so variants meet, validation that names
what is wrong, seeds and feedback on real papers (the recorded arXiv snapshot), reset and shown."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from academichub.ingest.pipeline import ingest_file
from academichub.store import radars as store
from academichub.store.radars import RadarError
from academichub.store.schema import papers, radar_feedback, radar_rules, radar_seeds, radar_shown, users

SNAPSHOT = "arxiv/snapshot/arxiv-metadata-oai-snapshot-head.jsonl"


@pytest.fixture
def stored(engine, shared_data):
    """200 real arXiv papers; returns store ids of 0704.0001, 0704.0002, 0704.0003."""
    ingest_file(engine, shared_data / SNAPSHOT)
    with engine.connect() as conn:
        rows = conn.execute(
            select(papers.c.arxiv_id, papers.c.id).where(papers.c.arxiv_id.in_(["0704.0001", "0704.0002", "0704.0003"]))
        ).all()
    ids = dict(rows)
    return [ids["0704.0001"], ids["0704.0002"], ids["0704.0003"]]


@pytest.fixture
def radar(engine):
    with engine.begin() as conn:
        return store.create_radar(conn, user_id=store.default_user(conn), name="diphotons", interest="QCD at colliders")


def test_default_user_is_created_once(engine):
    with engine.begin() as conn:
        first = store.default_user(conn)
        assert store.default_user(conn) == first
        assert conn.execute(select(users.c.name)).scalars().all() == ["local"]


def test_radar_names_are_unique_per_user(engine, radar):
    with engine.begin() as conn:
        user = store.default_user(conn)
        with pytest.raises(RadarError, match="a radar named 'diphotons' already exists"):
            store.create_radar(conn, user_id=user, name=" diphotons ")
        with pytest.raises(RadarError, match="all digits"):
            store.create_radar(conn, user_id=user, name="42")
        other = conn.execute(users.insert().values(name="ada", created_at=store.utcnow()).returning(users.c.id)).scalar_one()
        assert store.create_radar(conn, user_id=other, name="diphotons") != radar


def test_author_variants_are_one_rule(engine, radar):
    with engine.begin() as conn:
        for variant in ("C. Balázs", "Csaba Balazs", "Bal\\'azs, C."):
            rule = store.add_rule(conn, radar, "author", variant)
            assert rule.value_key == "balazs c"
        assert rule.value == "C. Balázs"  # the first spelling is kept
        rules = conn.execute(select(radar_rules.c.kind, radar_rules.c.value_key)).all()
        assert rules == [("author", "balazs c")]
        # muting a followed author replaces the follow, and removing takes any variant
        store.add_rule(conn, radar, "mute_author", "Csaba Balazs", orcid="https://orcid.org/0000-0002-1825-0097")
        got = store.get_radar(conn, "diphotons")
        assert got.rules["author"] == []
        assert [(r.value_key, r.orcid) for r in got.rules["mute_author"]] == [("balazs c", "0000-0002-1825-0097")]
        assert store.remove_rule(conn, radar, "mute_author", "C. Balázs") is True
        assert store.remove_rule(conn, radar, "mute_author", "C. Balázs") is False


def test_keyword_category_and_venue_keys(engine, radar):
    with engine.begin() as conn:
        assert store.add_rule(conn, radar, "keyword", "Graph  Neural-Networks").value_key == "graph neural networks"
        assert store.add_rule(conn, radar, "keyword", "graph neural networks").value == "Graph Neural-Networks"
        assert store.add_rule(conn, radar, "exclude", "Café C++").value_key == "cafe c++"
        assert store.add_rule(conn, radar, "keyword", "图神经网络").value_key == "图神经网络"
        assert store.add_rule(conn, radar, "category", "cs.LG").value_key == "cs.LG"
        assert store.add_rule(conn, radar, "category", "cs.lg").value == "cs.LG"  # the same rule
        assert store.add_rule(conn, radar, "category", "cond-mat.stat-mech").value_key == "cond-mat.stat-mech"
        assert store.add_rule(conn, radar, "category", "hep-th").value_key == "hep-th"
        # the catalog knows "PRL" as Physical Review Letters
        assert store.add_rule(conn, radar, "venue", "PRL").value_key == "physical review letters"
        assert store.add_rule(conn, radar, "venue", "Phys. Rev. Lett.").value == "PRL"
        got = store.get_radar(conn, radar)
        assert {k: [r.value_key for r in v] for k, v in got.rules.items() if v} == {
            "keyword": ["graph neural networks", "图神经网络"],
            "exclude": ["cafe c++"],
            "category": ["cond-mat.stat-mech", "cs.LG", "hep-th"],
            "venue": ["physical review letters"],
        }


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("category", "astroph", "'astroph' is not an arXiv category"),
        ("category", "cs.LGX", "'cs.LGX' is not an arXiv category"),
        ("category", "machine learning", "is not an arXiv category"),
        ("keyword", "  ", "empty keyword rule"),
        ("keyword", "!!!", "has no letters or digits"),
        ("author", "...", "is not an author name"),
        ("topic", "x", "unknown rule kind 'topic'"),
    ],
)
def test_bad_rules_are_refused(engine, radar, kind, value, message):
    with engine.begin() as conn:
        with pytest.raises(RadarError, match=message):
            store.add_rule(conn, radar, kind, value)
        assert conn.execute(select(func.count()).select_from(radar_rules)).scalar_one() == 0


def test_bad_orcid_is_refused(engine, radar):
    with engine.begin() as conn, pytest.raises(RadarError, match="not an ORCID"):
        store.add_rule(conn, radar, "author", "C. Balázs", orcid="12345")


def test_feedback_is_validated(engine, radar, stored):
    first, second, _third = stored
    with engine.begin() as conn:
        like = store.add_feedback(conn, radar, first, "like")
        assert store.add_feedback(conn, radar, first, "like") == like  # the same press twice is one row
        store.add_feedback(conn, radar, second, "less-author", "E. L. Berger")
        store.add_feedback(conn, radar, None, "less_topic", "parton distributions")
        with pytest.raises(RadarError, match="unknown feedback 'love'"):
            store.add_feedback(conn, radar, first, "love")
        with pytest.raises(RadarError, match="dismiss needs a paper"):
            store.add_feedback(conn, radar, None, "dismiss")
        with pytest.raises(RadarError, match="less-topic needs a paper or a value"):
            store.add_feedback(conn, radar, None, "less_topic")
        with pytest.raises(RadarError, match="no paper with id 999999"):
            store.add_feedback(conn, radar, 999999, "save")
        with pytest.raises(RadarError, match="no radar with id 999999"):
            store.add_feedback(conn, 999999, first, "save")
        got = store.get_radar(conn, radar)
        assert [(f.paper_id, f.action, f.value) for f in got.feedback] == [
            (first, "like", None), (second, "less_author", "E. L. Berger"), (None, "less_topic", "parton distributions")
        ]


def test_reset_learning_keeps_rules_and_seeds(engine, radar, stored):
    with engine.begin() as conn:
        store.add_rule(conn, radar, "author", "C. Balázs")
        assert store.add_seeds(conn, radar, stored, origin="mine.bib") == 3
        assert store.add_seeds(conn, radar, stored[:2], origin="mine.bib") == 0
        store.add_feedback(conn, radar, stored[0], "like")
        store.add_feedback(conn, radar, stored[1], "dismiss")
        assert store.reset_learning(conn, radar) == 2
        got = store.get_radar(conn, radar)
        assert got.feedback == []
        assert got.seeds == stored
        assert [r.value for r in got.rules["author"]] == ["C. Balázs"]
        assert got.interest == "QCD at colliders"
        with pytest.raises(RadarError, match="no paper with id 999999"):
            store.add_seeds(conn, radar, [999999])


def test_shown_today(engine, radar, stored):
    day, next_day = date(2024, 11, 28), date(2024, 11, 29)
    with engine.begin() as conn:
        assert store.shown_today(conn, radar, day) == set()
        assert store.mark_shown(conn, radar, day, stored[:2], batch=0) == 2
        assert store.mark_shown(conn, radar, day, stored, batch=1) == 1  # only the one not shown yet
        assert store.shown_today(conn, radar, day) == set(stored)
        assert store.shown_today(conn, radar, next_day) == set()
        batches = dict(conn.execute(select(radar_shown.c.paper_id, radar_shown.c.batch)).all())
        assert batches == {stored[0]: 0, stored[1]: 0, stored[2]: 1}


def test_list_get_and_delete(engine, radar, stored):
    with engine.begin() as conn:
        store.add_rule(conn, radar, "keyword", "diphoton")
        store.add_seeds(conn, radar, stored[:1])
        store.add_feedback(conn, radar, stored[1], "save")
        store.set_interest(conn, radar, "  ")
        summaries = store.list_radars(conn)
        assert [(s.name, s.rules, s.seeds, s.feedback, s.interest) for s in summaries] == [("diphotons", 1, 1, 1, None)]
        assert store.get_radar(conn, str(radar)).name == "diphotons"
        assert store.get_radar(conn, "nothing") is None
        store.delete_radar(conn, radar)
        assert store.get_radar(conn, radar) is None
        for table in (radar_rules, radar_seeds, radar_feedback):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(papers)).scalar_one() == 200  # papers stay
        with pytest.raises(RadarError, match="no radar with id"):
            store.delete_radar(conn, radar)


def test_find_paper_by_id_arxiv_id_or_doi(engine, stored):
    with engine.connect() as conn:
        first = stored[0]
        assert store.find_paper(conn, str(first)) == first
        assert store.find_paper(conn, "0704.0001v2") == first
        assert store.find_paper(conn, "arXiv:0704.0001") == first
        assert store.find_paper(conn, "https://doi.org/10.1103/PhysRevD.76.013009") == first
        assert store.find_paper(conn, "10.1103/physrevd.76.013009") == first
        assert store.find_paper(conn, "10.9999/nothing") is None
        assert store.find_paper(conn, "999999") is None
