"""Settings as CLI flags (`setting_flags`): every setting but the keys can be a flag, each flag's
value reaches the settings and wins over the environment, and the real commands use them (a
User-Agent sent to a real local server, a bad value refused in one line). docs/settings.md lists
which command takes which; tests/test_docs.py compares that page with the command tree."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from pydantic import SecretStr
from typer.testing import CliRunner

from academichub import cli
from academichub.cli import app
from academichub.settings import Settings

KEYS = sorted(n for n, f in Settings.model_fields.items() if SecretStr in (f.annotation, *getattr(f.annotation, "__args__", ())))
FLAGGABLE = sorted(n for n in Settings.model_fields if n not in KEYS)
COMMAND_FLAGS = [n for n in FLAGGABLE if n not in cli.GLOBAL_SETTINGS]


def given(name: str, tmp_path: Path) -> tuple[list[str], object]:
    """Arguments that set `name` to a value other than its default, and that value as Settings holds it."""
    dashed = name.replace("_", "-")
    field = Settings.model_fields[name]
    kind = cli._flag_type(name)
    if kind is bool:
        return ([f"--no-{dashed}"], False) if field.default else ([f"--{dashed}"], True)
    if name == "llm_response_format":
        return [f"--{dashed}", "none"], "none"
    if name == "smtp_security":
        return [f"--{dashed}", "tls"], "tls"
    if name == "timezone":  # an IANA name, checked
        return [f"--{dashed}", "Asia/Shanghai"], "Asia/Shanghai"
    if kind is Path:
        return [f"--{dashed}", str(tmp_path / "elsewhere")], tmp_path / "elsewhere"
    if kind is int:
        return [f"--{dashed}", "17"], 17
    if kind is float:
        return [f"--{dashed}", "2.5"], 2.5
    return [f"--{dashed}", f"{name}[/x] :abc:"], f"{name}[/x] :abc:"


def test_the_keys_are_the_only_settings_without_a_flag():
    assert KEYS == ["llm_api_key", "oidc_client_secret", "pubmed_api_key", "secret_key", "semanticscholar_api_key", "smtp_password"]
    with pytest.raises(TypeError, match="secret"):
        cli.setting_flags("llm_api_key")(lambda: None)


def test_every_flag_reaches_the_settings_and_wins_over_the_environment(tmp_path, monkeypatch):
    """One command with every settable flag, behind the real global options: each value given
    arrives in Settings with its type, whatever the environment says."""
    monkeypatch.setenv("ACADEMICHUB_PORT", "9999")
    monkeypatch.setenv("ACADEMICHUB_USER_AGENT", "from-the-environment")
    seen: dict = {}
    probe = typer.Typer(pretty_exceptions_enable=False)
    probe.callback()(cli.main)

    @probe.command("probe")
    @cli.setting_flags(*COMMAND_FLAGS)
    def probe_command() -> None:
        seen.update(cli._settings().model_dump())

    global_args, command_args, expected = [], [], {}
    for name in FLAGGABLE:
        args, value = given(name, tmp_path)
        (global_args if name in cli.GLOBAL_SETTINGS else command_args).extend(args)
        expected[name] = value
    result = CliRunner().invoke(probe, [*global_args, "probe", *command_args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert {name: seen[name] for name in FLAGGABLE} == expected
    for name, value in expected.items():
        assert Settings.model_fields[name].default != value, f"{name}: the test must give a value other than the default"


def test_a_later_run_does_not_keep_an_earlier_runs_flags(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["--http-timeout", "5", "db", "upgrade"]).exit_code == 0
    assert cli._settings().http_timeout == 5
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert cli._settings().http_timeout == Settings.model_fields["http_timeout"].default


def test_the_user_agent_flag_is_sent_upstream(database_url, monkeypatch, local_server, shared_data):
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    local_server.route("/day.xml", body=(shared_data / "arxiv/rss/2024-11-28-all-archives.xml").read_bytes())
    result = CliRunner().invoke(
        app, ["--user-agent", "LabRadar/2 (+https://lab.example)", "--arxiv-min-interval", "0", "ingest",
              local_server.url("/day.xml")], catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert [headers["User-Agent"] for _, headers in local_server.requests] == ["LabRadar/2 (+https://lab.example)"]


def test_a_bad_flag_value_is_one_line_naming_the_setting(database_url, monkeypatch):
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    result = CliRunner().invoke(app, ["brief", "all", "--llm-response-format", "yaml"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.output.startswith("error: setting llm_response_format: ")
    assert len(result.output.splitlines()) == 1
