"""The job ledger (store/jobs.py) on the test's real store (SQLite, or PostgreSQL in the second
pass): keys are unique, a claim is atomic (threads racing on their own connections), a done key
is never claimed again, an expired lease is, and a worker that lost its job cannot finish it."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from academichub.store import jobs as ledger

NOW = datetime(2026, 12, 5, 6, 0)


def test_ensure_is_idempotent(engine):
    with engine.begin() as conn:
        assert ledger.ensure(conn, "source:c:2026-12-05", "sources", {"sources": ["c"]}, NOW)
        assert not ledger.ensure(conn, "source:c:2026-12-05", "sources", {"sources": ["other"]}, NOW)
    with engine.connect() as conn:
        job = ledger.get(conn, "source:c:2026-12-05")
        assert (job.status, job.attempts, job.params) == ("queued", 0, {"sources": ["c"]})
        assert ledger.counts(conn) == {"queued": 1, "running": 0, "done": 0, "failed": 0}


def test_one_claim_wins_a_race(engine):
    with engine.begin() as conn:
        ledger.ensure(conn, "k", "sources", {}, NOW)
    barrier = threading.Barrier(8)
    won = []

    def claim(i):
        barrier.wait()
        if ledger.claim(engine, "k", f"w{i}", NOW, 60) is not None:
            won.append(i)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    with engine.connect() as conn:
        job = ledger.get(conn, "k")
    assert (job.status, job.worker, job.attempts) == ("running", f"w{won[0]}", 1)


def test_leases_finish_and_failures(engine):
    with engine.begin() as conn:
        ledger.ensure(conn, "k", "embed", {}, NOW)
    assert ledger.claim(engine, "k", "a", NOW, 60) is not None
    assert ledger.claim(engine, "k", "b", NOW + timedelta(seconds=59), 60) is None  # lease holds
    assert ledger.heartbeat(engine, "k", "a", NOW + timedelta(seconds=50), 60)  # ...and is renewed
    assert ledger.claim(engine, "k", "b", NOW + timedelta(seconds=100), 60) is None
    with engine.connect() as conn:
        assert ledger.stranded(conn, NOW + timedelta(seconds=100), 60) == []
        assert [j.key for j in ledger.stranded(conn, NOW + timedelta(seconds=111), 60)] == ["k"]  # "a" died
    taken = ledger.claim(engine, "k", "b", NOW + timedelta(seconds=111), 60)
    assert (taken.worker, taken.attempts) == ("b", 2)
    assert not ledger.heartbeat(engine, "k", "a", NOW + timedelta(seconds=112), 60)
    with engine.begin() as conn:
        assert not ledger.finish(conn, "k", "a", NOW + timedelta(seconds=113))  # "a" lost it
        assert ledger.finish(conn, "k", "b", NOW + timedelta(seconds=114), {"embedded": 3})
    assert ledger.claim(engine, "k", "c", NOW + timedelta(days=1), 60) is None  # done is done
    assert ledger.claim(engine, "k", "c", NOW + timedelta(days=1), 60, force=True) is None
    with engine.connect() as conn:
        job = ledger.get(conn, "k")
        assert (job.status, job.result, job.lease_until) == ("done", {"embedded": 3}, None)

    with engine.begin() as conn:
        ledger.ensure(conn, "f", "sources", {}, NOW)
    ledger.claim(engine, "f", "a", NOW, 60)
    retry_at = NOW + timedelta(seconds=30)
    assert ledger.fail(engine, "f", "a", NOW, "HTTP 503", retry_at=retry_at)
    with engine.connect() as conn:
        job = ledger.get(conn, "f")
        assert (job.status, job.error, job.enqueued_at) == ("queued", "HTTP 503", retry_at)
        # Not stranded while its retry is pending; stranded a lease after it was due.
        assert ledger.stranded(conn, retry_at + timedelta(seconds=59), 60) == []
        assert [j.key for j in ledger.stranded(conn, retry_at + timedelta(seconds=61), 60)] == ["f"]
    ledger.claim(engine, "f", "a", retry_at, 60)
    assert ledger.fail(engine, "f", "a", retry_at, "HTTP 503 again", retry_at=None)
    assert ledger.claim(engine, "f", "b", retry_at, 60) is None  # failed for good...
    assert ledger.claim(engine, "f", "b", retry_at, 60, force=True).attempts == 3  # ...until asked for


def test_briefing_owners_use_the_users_clock(engine):
    from academichub.store.radars import create_radar, default_user
    from academichub.store.schema import users

    with engine.begin() as conn:
        local = default_user(conn)
        create_radar(conn, user_id=local, name="ml")
        lin = conn.execute(users.insert().values(name="lin", timezone="Asia/Shanghai", briefing_hour=9, created_at=NOW)
                           .returning(users.c.id)).scalar_one()
        create_radar(conn, user_id=lin, name="bio")
        owners = ledger.briefing_owners(conn)
    assert [(name, zone, hour) for _, name, zone, hour in owners] == [("ml", None, None), ("bio", "Asia/Shanghai", 9)]
