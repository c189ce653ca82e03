"""The documentation against the code: every setting is documented in docs/settings.md (and
nothing that no longer exists is), with its real environment variable, TOML key and default, and
the CLI flags the real command tree registers (read from Click, not guessed from the name); the
README starts with the two set-up commands, exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from academichub.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SETTINGS_DOC = REPO / "docs" / "settings.md"
README = REPO / "README.md"

RUN_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 && "
    ".venv/bin/pip install -e '.[embeddings]' && .venv/bin/academichub serve"
)
TEST_COMMAND = "scripts/test"

_ROW = re.compile(r"^\|\s*`(?P<name>[a-z_][a-z0-9_]*)`\s*\|(?P<rest>.*)\|\s*$")


def documented_rows() -> dict[str, list[str]]:
    """Table rows of docs/settings.md keyed by setting name: the cells after the name."""
    rows: dict[str, list[str]] = {}
    for line in SETTINGS_DOC.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            name = match["name"]
            assert name not in rows, f"docs/settings.md documents {name!r} twice"
            rows[name] = [cell.strip() for cell in match["rest"].split("|")]
    return rows


def shown_default(value) -> str | None:
    """How a plain default must appear in the Default column (None: not checked)."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (int, float, str)):
        return f"`{value}`"
    return None


def test_every_setting_is_documented():
    missing = sorted(set(Settings.model_fields) - set(documented_rows()))
    assert not missing, f"settings missing from docs/settings.md: {', '.join(missing)}"


def test_no_documented_setting_is_gone():
    stale = sorted(set(documented_rows()) - set(Settings.model_fields))
    assert not stale, f"docs/settings.md documents settings that no longer exist: {', '.join(stale)}"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_setting_row_matches_code(name):
    row = documented_rows().get(name)
    if row is None:
        pytest.fail(f"{name} is not in docs/settings.md")
    assert len(row) == 5, f"{name}: expected 6 columns (setting, env, TOML, flag, default, description), got {len(row) + 1}"
    env, toml_key, flag, default, description = row
    assert f"`ACADEMICHUB_{name.upper()}`" in env, f"{name}: environment column should be ACADEMICHUB_{name.upper()}"
    assert f"`{name}`" in toml_key, f"{name}: TOML key column should be {name}"
    assert description, f"{name}: no description"
    field = Settings.model_fields[name]
    if field.default_factory is None:
        expected = shown_default(field.default)
        if expected is not None:
            assert expected in default, f"{name}: default is {field.default!r} in the code, docs say {default!r}"


# Options that carry a setting's name but are not that setting (and so are not in its row).
NOT_THE_SETTING = {
    ("embed", "--batch-size"): "papers per embedding batch, not the feed page's batch_size",
    ("mcp", "--host"): "the MCP server's HTTP address, not the web server's",
    ("mcp", "--port"): "the MCP server's HTTP port, not the web server's",
}
GLOBAL = ""  # the command path of the app callback: flags given before the command


def command_tree() -> dict[str, set[str]]:
    """Every command of the real `academichub` (Click's tree, as Typer builds it), as its path
    ("sources run"; "" for the global options), with the option flags it registers."""
    import typer

    from academichub.cli import app

    tree: dict[str, set[str]] = {}

    def walk(command, path: tuple[str, ...]) -> None:
        tree[" ".join(path)] = {
            flag for param in command.params if param.param_type_name == "option"
            for flag in (*param.opts, *param.secondary_opts)
        }
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return tree


def registered_flags(name: str) -> dict[str, set[str]]:
    """The commands that really take setting `name` as a flag, with the flags (--x, --no-x)."""
    dashed = name.replace("_", "-")
    found: dict[str, set[str]] = {}
    for path, flags in command_tree().items():
        mine = {f for f in flags if f in (f"--{dashed}", f"--no-{dashed}") and (path, f) not in NOT_THE_SETTING}
        if mine:
            found[path] = mine
    return found


def documented_flags(cell: str) -> tuple[set[str], set[str]]:
    """(flags, command paths) named in a CLI flag cell: "`--port` on `serve`", "`--x` / `--no-x`
    on `ingest`, `sources run`", "`--data-dir` (global: before the command)", or "none: …"."""
    flags = set(re.findall(r"`(--[a-z0-9-]+)`", cell))
    commands = {c for c in re.findall(r"`([a-z][a-z0-9 -]*)`", cell) if not c.startswith("-")}
    if "global" in cell:
        commands.add(GLOBAL)
    return flags, commands


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_documented_flags_are_the_real_ones(name):
    row = documented_rows().get(name)
    if row is None:
        pytest.fail(f"{name} is not in docs/settings.md")
    flags, commands = documented_flags(row[2])
    real = registered_flags(name)
    real_flags = set().union(*real.values()) if real else set()
    shown = {"": "the global options"}
    missing = sorted(shown.get(c, c) for c in commands - set(real))
    assert not missing, f"{name}: docs/settings.md names {sorted(flags)} on {missing}, which take no such flag"
    undocumented = sorted(shown.get(c, c) for c in set(real) - commands)
    assert not undocumented, f"{name}: {undocumented} take {sorted(real_flags)}, which docs/settings.md does not say"
    assert flags == real_flags, f"{name}: docs/settings.md shows {sorted(flags)}, the commands take {sorted(real_flags)}"
    if not real:
        assert row[2].startswith("none"), f"{name}: no command takes a flag for it; the CLI flag column must say none"


def test_the_flag_check_reads_the_real_command_tree():
    """The checks above compare with Click's tree itself: a flag the docs once claimed and the CLI
    never had is absent from it, and the global flags are where the callback declares them."""
    tree = command_tree()
    assert "--database-url" in tree[GLOBAL] and "--port" in tree["serve"] and "--no-ingest-worker" in tree["ingest"]
    assert "--llm-api-key" not in set().union(*tree.values())  # secrets are never flags
    assert registered_flags("batch_size") == {"serve": {"--batch-size"}}


def test_readme_has_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert RUN_COMMAND in text, f"README lacks the run command:\n  {RUN_COMMAND}"
    assert re.search(rf"^\s*{re.escape(TEST_COMMAND)}\s*$", text, re.M), "README lacks the test command on a line of its own: scripts/test"


def test_readme_points_at_the_settings_reference():
    assert "docs/settings.md" in README.read_text(encoding="utf-8")
