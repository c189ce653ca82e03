"""The documentation against the code: every setting is documented in docs/settings.md (and
nothing that no longer exists is), with its real environment variable, TOML key, flag and
default; the README starts with the two set-up commands, exactly."""

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
    assert f"`--{name.replace('_', '-')}`" in flag, f"{name}: flag column should be --{name.replace('_', '-')}"
    assert description, f"{name}: no description"
    field = Settings.model_fields[name]
    if field.default_factory is None:
        expected = shown_default(field.default)
        if expected is not None:
            assert expected in default, f"{name}: default is {field.default!r} in the code, docs say {default!r}"


def test_readme_has_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert RUN_COMMAND in text, f"README lacks the run command:\n  {RUN_COMMAND}"
    assert re.search(rf"^\s*{re.escape(TEST_COMMAND)}\s*$", text, re.M), "README lacks the test command on a line of its own: scripts/test"


def test_readme_points_at_the_settings_reference():
    assert "docs/settings.md" in README.read_text(encoding="utf-8")
