"""Who a CLI command acts as, through the real console script on the test's store (SQLite, or
PostgreSQL in the second pass): with one account, that account; with two or more, the commands on
one user's data stop with the fix ("give --user EMAIL (or set ACADEMICHUB_USER)") instead of
answering for nobody, and the commands on shared data go on as before."""

from __future__ import annotations

import json
import subprocess

import pytest

from cli_support import academichub_script, script_env

PASSWORD = "correct horse battery"
REFUSAL = "error: this store has 2 accounts: give --user EMAIL (or set ACADEMICHUB_USER)\n"


@pytest.fixture
def run(database_url, tmp_path):
    base = script_env(ACADEMICHUB_DATABASE_URL=database_url, ACADEMICHUB_DATA_DIR=str(tmp_path / "data"),
                      ACADEMICHUB_LOAD_SAMPLE="false")

    def run(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([academichub_script(), *args], input=stdin, capture_output=True, text=True,
                              env={**base, **env}, timeout=180)

    return run


def test_one_account_is_the_user_and_two_need_one_named(run):
    made = run("radar", "create", "Old", "--keyword", "qubit")
    assert made.returncode == 0, made.stderr
    assert run("users", "create", "ada@lab.example", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    alone = run("radar", "list")
    assert alone.returncode == 0 and "Old" in alone.stdout  # one account: it is the user, no --user needed

    assert run("users", "create", "bob@lab.example", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    per_user = [
        ("radar", "list"), ("radar", "show", "Old"), ("radar", "create", "New", "--keyword", "spin"),
        ("radar", "delete", "Old"), ("rank", "Old"), ("brief", "Old"), ("export", "saved"),
        ("digest", "send", "Old", "--to", "me@lab.example"),
    ]
    for args in per_user:
        refused = run(*args)
        assert (refused.returncode, refused.stderr, refused.stdout) == (1, REFUSAL, ""), args

    # named: the flag, or the setting in the environment (the flag wins over it)
    ada = run("--user", "ada@lab.example", "radar", "list")
    assert ada.returncode == 0 and "Old" in ada.stdout and "New" not in ada.stdout  # the refused create made nothing
    ranked = run("--user", "ada@lab.example", "rank", "Old", "--format", "json")
    assert ranked.returncode == 0 and json.loads(ranked.stdout) == []  # the radar is found (no papers yet)
    bob = run("radar", "list", ACADEMICHUB_USER="bob@lab.example")
    assert bob.returncode == 0 and "no radars yet" in bob.stdout
    flag_wins = run("--user", "bob@lab.example", "radar", "show", "Old", ACADEMICHUB_USER="ada@lab.example")
    assert flag_wins.returncode == 1 and "Old" in flag_wins.stderr and "accounts" not in flag_wins.stderr
    assert run("radar", "show", "Old", ACADEMICHUB_USER="ada@lab.example").returncode == 0
    made = run("radar", "create", "Bobs", "--keyword", "spin", ACADEMICHUB_USER="Bob@Lab.example")
    assert made.returncode == 0, made.stderr
    assert "Bobs" in run("--user", "bob@lab.example", "radar", "list").stdout
    assert "Bobs" not in run("--user", "ada@lab.example", "radar", "list").stdout
    unknown = run("--user", "nobody@lab.example", "radar", "list")
    assert (unknown.returncode, unknown.stderr) == (1, "error: no account nobody@lab.example\n")

    # what all users share needs no user
    for args in [("users", "list"), ("sources", "list"), ("papers", "list"), ("jobs", "status"), ("brief", "all")]:
        shared = run(*args)
        assert shared.returncode == 0 and "accounts" not in shared.stderr, (args, shared.stderr)
