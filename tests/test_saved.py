"""The reading list on a real store (SQLite, and PostgreSQL in the suite's second pass): migration
0009 moves radar "save" feedback onto the list, saving from a radar records both, unsaving
removes both, read/unread and notes, liked papers, a radar's current batch."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import insert, select

from academichub.app import saved
from academichub.app.hub import Hub
from academichub.errors import NotFound
from academichub.ingest.pipeline import load_sample_if_empty
from academichub.settings import Settings
from academichub.store.radars import add_feedback, create_radar, default_user, get_radar, mark_shown
from academichub.store.saved import SavedError
from academichub.store.schema import papers, radar_feedback, radars, saved_papers, users


@pytest.fixture
def hub(engine):
    summary = load_sample_if_empty(engine)
    assert summary is not None and summary.added == 1504
    hub = Hub(Settings(load_sample=False, batch_size=4), engine=engine)
    yield hub
    hub.close()


def paper_ids(engine, n: int) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(papers.c.id).order_by(papers.c.id).limit(n)).scalars())


def test_migration_0009_moves_each_users_radar_saves_onto_one_list(engine):
    from alembic import command

    from academichub.store.database import _alembic_config, current_revision

    with engine.begin() as connection:
        command.downgrade(_alembic_config(connection), "0008")  # the revision before the reading list
    assert current_revision(engine) == "0008"
    now = datetime(2024, 11, 28, 9, 0)
    with engine.begin() as conn:
        alice = conn.execute(insert(users).values(name="alice", created_at=now).returning(users.c.id)).scalar_one()
        bob = conn.execute(insert(users).values(name="bob", created_at=now).returning(users.c.id)).scalar_one()
        radar_ids = [conn.execute(insert(radars).values(user_id=u, name=n, settings={}, created_at=now, updated_at=now)
                                  .returning(radars.c.id)).scalar_one() for u, n in ((alice, "a1"), (alice, "a2"), (bob, "b1"))]
        pids = [conn.execute(insert(papers).values(title=f"paper {i}", abstract="", authors_text="", versions=[],
                                                   provenance={}, content_hash=str(i), created_at=now, modified_at=now)
                             .returning(papers.c.id)).scalar_one() for i in range(3)]
        rows = [  # alice saved paper 0 in both radars (the later first), bob saved paper 0 and liked paper 1
            (radar_ids[1], pids[0], "save", datetime(2024, 11, 2)), (radar_ids[0], pids[0], "save", datetime(2024, 11, 5)),
            (radar_ids[0], pids[2], "save", datetime(2024, 11, 6)), (radar_ids[2], pids[0], "save", datetime(2024, 11, 7)),
            (radar_ids[2], pids[1], "like", datetime(2024, 11, 8)),
        ]
        conn.execute(insert(radar_feedback), [{"radar_id": r, "paper_id": p, "action": a, "created_at": t} for r, p, a, t in rows])
    from academichub.store.database import open_store

    upgraded = open_store(engine.url.render_as_string(hide_password=False))
    with upgraded.connect() as conn:
        got = sorted(conn.execute(select(saved_papers.c.user_id, saved_papers.c.paper_id, saved_papers.c.radar_id,
                                         saved_papers.c.saved_at, saved_papers.c.read_at, saved_papers.c.note)).all())
        kept = conn.execute(select(radar_feedback.c.id)).all()
    upgraded.dispose()
    assert got == sorted([
        (alice, pids[0], radar_ids[0], datetime(2024, 11, 2), None, None),  # earliest save, lowest radar id
        (alice, pids[2], radar_ids[0], datetime(2024, 11, 6), None, None),
        (bob, pids[0], radar_ids[2], datetime(2024, 11, 7), None, None),
    ])
    assert len(kept) == 5  # the feedback stays: the ranker learns from it


def test_saving_from_a_radar_records_the_feedback_and_the_list_and_unsaving_removes_both(hub, engine):
    first, second = paper_ids(engine, 2)
    with hub.writing() as conn:
        user = default_user(conn)
        radar_id = create_radar(conn, user_id=user, name="spin qubits")
    entry = saved.save_paper(hub, user, first, radar_id=radar_id)
    assert (entry.paper_id, entry.radar_id, entry.radar_name, entry.new, entry.read_at, entry.note) == (
        first, radar_id, "spin qubits", True, None, None)
    again = saved.save_paper(hub, user, first, radar_id=radar_id)
    assert again.new is False and again.saved_at == entry.saved_at
    plain = saved.save_paper(hub, user, second)  # from a search card: no radar, no feedback
    assert (plain.radar_id, plain.new) == (None, True)
    with hub.reading() as conn:
        radar = get_radar(conn, radar_id)
    assert [(f.paper_id, f.action) for f in radar.feedback] == [(first, "save")]
    assert [e.paper["id"] for e in saved.list_saved(hub, user)] == [second, first]  # newest save first

    assert saved.unsave_paper(hub, user, first) is True
    assert saved.unsave_paper(hub, user, first) is False
    with hub.reading() as conn:
        assert get_radar(conn, radar_id).feedback == []
    assert [e.paper["id"] for e in saved.list_saved(hub, user)] == [second]


def test_the_radar_feedback_save_of_any_front_end_puts_the_paper_on_the_list(hub, engine):
    (pid,) = paper_ids(engine, 1)
    with hub.writing() as conn:
        user = default_user(conn)
        radar_id = create_radar(conn, user_id=user, name="r")
        add_feedback(conn, radar_id, pid, "save")  # what the CLI, the card's ★ and the JSON API call
        add_feedback(conn, radar_id, pid, "like")
    entries = saved.list_saved(hub, user)
    assert [(e.saved.paper_id, e.saved.radar_name) for e in entries] == [(pid, "r")]


def test_read_unread_notes_and_counts(hub, engine):
    a, b, c = paper_ids(engine, 3)
    with hub.writing() as conn:
        user = default_user(conn)
    for pid in (a, b, c):
        saved.save_paper(hub, user, pid)
    assert saved.mark_read(hub, user, b) is True
    assert saved.set_note(hub, user, a, "  compare with §3 of Burkard 2023  ") is True
    assert saved.mark_read(hub, user, 10**9) is False
    assert saved.saved_counts(hub, user) == {"all": 3, "unread": 2, "read": 1}
    assert [e.paper["id"] for e in saved.list_saved(hub, user, read=True)] == [b]
    assert [e.paper["id"] for e in saved.list_saved(hub, user, read=False)] == [c, a]
    assert [e.saved.note for e in saved.list_saved(hub, user, read=False)] == [None, "compare with §3 of Burkard 2023"]
    saved.mark_read(hub, user, b, False)
    saved.set_note(hub, user, a, "   ")
    assert saved.saved_counts(hub, user) == {"all": 3, "unread": 3, "read": 0}
    assert [e.saved.note for e in saved.list_saved(hub, user)] == [None, None, None]
    with pytest.raises(SavedError, match="at most 10000 characters"):
        saved.set_note(hub, user, a, "x" * 10_001)
    with pytest.raises(SavedError, match="no paper with id"):
        saved.save_paper(hub, user, 10**9)


def test_a_list_is_per_user_and_a_radar_of_another_user_is_refused(hub, engine):
    a, b = paper_ids(engine, 2)
    with hub.writing() as conn:
        alice = default_user(conn)
        bob = conn.execute(insert(users).values(name="bob", created_at=datetime(2024, 1, 1)).returning(users.c.id)).scalar_one()
        alices = create_radar(conn, user_id=alice, name="alice's")
    saved.save_paper(hub, alice, a)
    saved.save_paper(hub, bob, b)
    assert [e.paper["id"] for e in saved.list_saved(hub, alice)] == [a]
    assert [e.paper["id"] for e in saved.list_saved(hub, bob)] == [b]
    with pytest.raises(NotFound):
        saved.save_paper(hub, bob, a, radar_id=alices)
    assert [e.paper["id"] for e in saved.list_saved(hub, bob)] == [b]
    saved.unsave_paper(hub, bob, a)  # not on bob's list: alice's stays
    assert [e.paper["id"] for e in saved.list_saved(hub, alice)] == [a]


def test_liked_papers_of_one_radar_or_all_and_a_deleted_radar_keeps_the_list(hub, engine):
    a, b, c = paper_ids(engine, 3)
    with hub.writing() as conn:
        user = default_user(conn)
        r1 = create_radar(conn, user_id=user, name="one")
        r2 = create_radar(conn, user_id=user, name="two")
        add_feedback(conn, r1, a, "like")
        add_feedback(conn, r2, b, "like")
        add_feedback(conn, r2, a, "like")
        add_feedback(conn, r2, c, "save")
    assert [p["id"] for p in saved.liked_papers(hub, user)] == [a, b]
    assert [p["id"] for p in saved.liked_papers(hub, user, radar="two")] == [b, a]
    with pytest.raises(NotFound):
        saved.liked_papers(hub, user, radar="three")
    from academichub.store.radars import delete_radar

    with hub.writing() as conn:
        delete_radar(conn, r2)
    assert [(e.saved.paper_id, e.saved.radar_id) for e in saved.list_saved(hub, user)] == [(c, None)]


def test_a_radars_batch_is_todays_latest_shown_batch_else_its_top_ranked(hub, engine):
    a, b, c, d = paper_ids(engine, 4)
    with hub.writing() as conn:
        user = default_user(conn)
        radar_id = create_radar(conn, user_id=user, name="quantum", interest="spin qubits in silicon quantum dots")
    top = saved.radar_batch_ids(hub, user, "quantum")
    assert len(top) == 4 and top == [r.id for r in hub.rank("quantum", limit=4)]
    with hub.writing() as conn:
        mark_shown(conn, radar_id, hub.today(), [a, b], 1)
        mark_shown(conn, radar_id, hub.today(), [d, c], 2)
        mark_shown(conn, radar_id, date(2000, 1, 1), [a], 9)
    assert saved.radar_batch_ids(hub, user, "quantum") == sorted([c, d])
    records, stem = saved.export_records(hub, user, "radar:quantum")
    assert ([r.id for r in records], stem) == (sorted([c, d]), "radar-quantum")
