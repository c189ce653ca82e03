"""Settings: env, TOML file and flags, in that order of strength; clear errors; secrets hidden."""

from __future__ import annotations

import pytest

from academichub.errors import ConfigError
from academichub.settings import load_settings


def test_precedence_flag_over_env_over_toml(tmp_path, monkeypatch):
    config = tmp_path / "academichub.toml"
    config.write_text('port = 9001\ncontact_email = "lab@example.org"\nbatch_size = 7\n')
    monkeypatch.setenv("ACADEMICHUB_PORT", "9002")
    settings = load_settings(config)
    assert settings.port == 9002  # env beats the file
    assert settings.contact_email == "lab@example.org"
    assert settings.batch_size == 7
    assert load_settings(config, port=9003).port == 9003  # a flag beats both
    assert "mailto:lab@example.org" in settings.full_user_agent


def test_default_database_is_sqlite_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("ACADEMICHUB_DATABASE_URL", raising=False)
    monkeypatch.setenv("ACADEMICHUB_DATA_DIR", str(tmp_path))
    assert load_settings().effective_database_url == f"sqlite:///{tmp_path / 'academichub.db'}"


def test_bad_values_and_files_are_config_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("ACADEMICHUB_PORT", "eighty")
    with pytest.raises(ConfigError, match="port"):
        load_settings()
    monkeypatch.delenv("ACADEMICHUB_PORT")
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1\n")
    with pytest.raises(ConfigError):
        load_settings(broken)


def test_secrets_never_show(monkeypatch):
    monkeypatch.setenv("ACADEMICHUB_LLM_API_KEY", "sk-very-secret")
    settings = load_settings()
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in str(settings.model_dump())
    assert settings.llm_api_key.get_secret_value() == "sk-very-secret"
