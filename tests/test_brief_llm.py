"""The LLM client against a fake OpenAI-compatible server speaking the real wire format
(tests/fake_openai.py): non-streaming and streaming answers with usage, 429 with Retry-After
(seconds and HTTP date) honoured through an injected sleep (nobody waits), 500 with backoff,
JSON mode refused, the API key never logged, token estimates and the budget; a 200 that is not a
chat completion (an HTML page, text, JSON of another shape) is a clear error, and `brief` and
/api/briefing fall back to the extractive briefing on it (SQLite, or PostgreSQL in the second pass)."""

from __future__ import annotations

import email.utils
import json
import logging
import warnings
from datetime import date

import pytest
from typer.testing import CliRunner

from academichub.brief.llm import (
    ChatClient,
    LLMConfig,
    LLMError,
    NotACompletion,
    estimate_tokens,
    message_tokens,
    retry_after_seconds,
)
from academichub.settings import load_settings
from fake_openai import FakeOpenAI, Reply

KEY = "sk-test-abcdef0123456789-secret"
MESSAGES = [{"role": "system", "content": "Answer with JSON."}, {"role": "user", "content": "Say hello."}]


@pytest.fixture
def fake():
    server = FakeOpenAI().start()
    yield server
    server.stop()


def client(fake, sleeps: list, **overrides) -> ChatClient:
    config = LLMConfig(model="fake-model", base_url=fake.base_url, api_key=KEY, timeout=10, retries=3,
                       max_backoff=30, **overrides)
    return ChatClient(config, sleep=sleeps.append, now=lambda: 1_700_000_000.0)


def test_config_from_settings_and_no_llm_by_default():
    assert LLMConfig.from_settings(load_settings(load_sample=False)) is None
    assert LLMConfig.from_settings(load_settings(load_sample=False, llm_api_key=KEY)) is None  # no model: no LLM
    config = LLMConfig.from_settings(load_settings(
        load_sample=False, llm_model="deepseek-chat", llm_base_url="https://api.deepseek.com/v1", llm_api_key=KEY,
        llm_price_per_1k_input=0.002, llm_price_per_1k_output=0.008, llm_stream=True,
    ))
    assert config.model == "deepseek-chat" and config.base_url == "https://api.deepseek.com/v1" and config.stream
    assert config.api_key == KEY and KEY not in repr(config)
    assert config.cost(1000, 500) == pytest.approx(0.006)


def test_non_streaming_answer_and_usage(fake):
    fake.script = [FakeOpenAI.answer('{"ok": true}', usage=(321, 12))]
    sleeps: list[float] = []
    result = client(fake, sleeps).complete(MESSAGES)
    assert result.content == '{"ok": true}'
    assert (result.tokens_in, result.tokens_out, result.usage_reported) == (321, 12, True)
    headers, body = fake.requests[0]
    assert headers["authorization"] == f"Bearer {KEY}"
    assert body["model"] == "fake-model" and body["messages"] == MESSAGES
    assert body["response_format"] == {"type": "json_object"} and "stream" not in body
    assert sleeps == []


def test_streaming_accumulates_deltas_and_reads_usage_from_the_last_chunk(fake):
    content = '{"headline": "streamed", "themes": []}'
    fake.script = [FakeOpenAI.answer(content, usage=(400, 25))]
    result = client(fake, [], stream=True).complete(MESSAGES)
    assert result.content == content
    assert (result.tokens_in, result.tokens_out, result.usage_reported) == (400, 25, True)
    body = fake.requests[0][1]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_streaming_without_usage_is_estimated(fake):
    fake.script = [FakeOpenAI.answer("x" * 70, usage=None)]
    result = client(fake, [], stream=True).complete(MESSAGES)
    assert result.content == "x" * 70 and not result.usage_reported
    assert result.tokens_out == estimate_tokens("x" * 70) and result.tokens_in == message_tokens(MESSAGES)


def test_a_broken_stream_is_retried(fake):
    from fake_openai import Reply

    broken = Reply(200, raw=b'data: {"id": "x", "choices": [{"delta": {"content": "par', headers={"Content-Type": "text/event-stream"})
    fake.script = [broken, FakeOpenAI.answer("{}", usage=(5, 1))]
    sleeps: list[float] = []
    result = client(fake, sleeps, stream=True).complete(MESSAGES)
    assert result.content == "{}" and result.attempts == 2 and sleeps == [1.0]


def test_429_retry_after_seconds_is_honoured(fake):
    fake.script = [FakeOpenAI.error(429, retry_after="7"), FakeOpenAI.error(429, retry_after="2.5"),
                   FakeOpenAI.answer("{}", usage=(10, 1))]
    sleeps: list[float] = []
    result = client(fake, sleeps).complete(MESSAGES)
    assert result.content == "{}" and result.attempts == 3
    assert sleeps == [7.0, 2.5]
    assert fake.hits == 3


def test_429_retry_after_http_date_is_honoured(fake):
    when = email.utils.formatdate(1_700_000_000.0 + 12, usegmt=True)
    fake.script = [FakeOpenAI.error(429, retry_after=when), FakeOpenAI.answer("{}")]
    sleeps: list[float] = []
    client(fake, sleeps).complete(MESSAGES)
    assert sleeps == [12.0]


def test_500_backs_off_exponentially_then_gives_up(fake):
    fake.script = [FakeOpenAI.error(500)]
    sleeps: list[float] = []
    with pytest.raises(LLMError, match="failed 4 times"):
        client(fake, sleeps).complete(MESSAGES)
    assert sleeps == [1.0, 2.0, 4.0]
    assert fake.hits == 4


def test_500_then_success(fake):
    fake.script = [FakeOpenAI.error(500), FakeOpenAI.error(503, retry_after="3"), FakeOpenAI.answer("{}")]
    sleeps: list[float] = []
    assert client(fake, sleeps).complete(MESSAGES).attempts == 3
    assert sleeps == [1.0, 3.0]


def test_retry_after_longer_than_max_backoff_is_not_waited(fake):
    fake.script = [FakeOpenAI.error(429, retry_after="3600"), FakeOpenAI.answer("{}")]
    sleeps: list[float] = []
    with pytest.raises(LLMError, match="asks to wait 3600 s"):
        client(fake, sleeps).complete(MESSAGES)
    assert sleeps == [] and fake.hits == 1


def test_json_mode_refused_is_asked_again_without_it(fake):
    fake.script = [FakeOpenAI.error(400, message="response_format json_object is not supported"), FakeOpenAI.answer("{}")]
    chat = client(fake, [])
    assert chat.complete(MESSAGES).content == "{}"
    assert "response_format" in fake.requests[0][1] and "response_format" not in fake.requests[1][1]
    chat.complete(MESSAGES)  # remembered for the next request
    assert "response_format" not in fake.requests[2][1]


def test_other_client_errors_are_not_retried(fake):
    fake.script = [FakeOpenAI.error(401, message="invalid api key")]
    sleeps: list[float] = []
    with pytest.raises(LLMError, match="401: invalid api key"):
        client(fake, sleeps, response_format="none").complete(MESSAGES)
    assert fake.hits == 1 and sleeps == []


def test_api_key_is_never_logged(fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.script = [FakeOpenAI.error(429, retry_after="1"), FakeOpenAI.error(401, message="bad key")]
    with pytest.raises(LLMError) as failure:
        client(fake, []).complete(MESSAGES)
    fake.script = [FakeOpenAI.answer("{}")]
    client(fake, []).complete(MESSAGES)
    assert caplog.records  # the client did log (retries, requests)
    assert KEY not in caplog.text and KEY not in str(failure.value)
    assert all(h["authorization"] == f"Bearer {KEY}" for h, _ in fake.requests)


def test_retry_after_parsing():
    now = lambda: 1_000.0  # noqa: E731
    assert retry_after_seconds({"retry-after": "5"}, now) == 5.0
    assert retry_after_seconds({"retry-after-ms": "1500"}, now) == 1.5
    assert retry_after_seconds({"retry-after": email.utils.formatdate(1_030.0, usegmt=True)}, now) == 30.0
    assert retry_after_seconds({"retry-after": "soon"}, now) is None
    assert retry_after_seconds({}, now) is None
    assert retry_after_seconds({"retry-after": "-3"}, now) == 0.0


def test_token_estimate_is_the_documented_approximation():
    assert estimate_tokens("", use_tiktoken=False) == 0
    assert estimate_tokens("abcdefg", use_tiktoken=False) == 2  # 7 / 3.5
    assert estimate_tokens("a" * 350, use_tiktoken=False) == 100
    assert estimate_tokens("图神经网络", use_tiktoken=False) == 5  # one per CJK character
    assert estimate_tokens("GNN 图神经网络", use_tiktoken=False) == 5 + 2
    assert message_tokens([{"role": "user", "content": "a" * 35}], use_tiktoken=False) == 3 + 4 + 10


# -- a 200 that is not a chat completion ---------------------------------------------------------

NOT_COMPLETIONS = {
    "html": Reply(200, raw=b"<!doctype html><html><head><title>Sign in</title></head><body>Welcome</body></html>",
                  headers={"Content-Type": "text/html; charset=utf-8"}),
    "text": Reply(200, raw=b"upstream connect error or disconnect/reset before headers",
                  headers={"Content-Type": "application/json"}),
    "other-json": Reply(200, raw=b'{"object": "list", "data": [{"id": "fake-model", "object": "model"}]}',
                        headers={"Content-Type": "application/json"}),
}
EXPECTED = {"html": "text/html", "text": "not JSON", "other-json": "without a choices list"}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", list(NOT_COMPLETIONS))
def test_a_200_that_is_not_a_chat_completion_is_a_clear_error_not_retried(fake, kind, stream):
    fake.script = [NOT_COMPLETIONS[kind]]
    sleeps: list[float] = []
    with pytest.raises(NotACompletion) as failure:
        client(fake, sleeps, stream=stream).complete(MESSAGES)
    message = str(failure.value)
    assert message.startswith(f"{fake.base_url}/chat/completions answered 200 with ")
    assert (EXPECTED[kind] if not stream else "not a stream of chat completion chunks") in message
    assert KEY not in message
    assert fake.hits == 1 and sleeps == []  # the same URL gives the same page: not asked again


def test_a_completion_with_odd_fields_is_still_read(fake):
    """Only the fields we read are checked: usage of the wrong type is estimated, extra fields ignored."""
    body = {"choices": [{"message": {"role": "assistant", "content": "{}"}, "finish_reason": 3}],
            "usage": {"prompt_tokens": "many", "completion_tokens": None}, "model": ["x"], "extra": {"a": 1}}
    fake.script = [Reply(200, raw=json.dumps(body).encode(), headers={"Content-Type": "application/json"})]
    result = client(fake, []).complete(MESSAGES)
    assert result.content == "{}" and not result.usage_reported
    assert (result.tokens_in, result.tokens_out) == (message_tokens(MESSAGES), estimate_tokens("{}"))
    assert result.model is None and result.finish_reason is None


DAY = date(2024, 11, 28)


@pytest.fixture
def sample_store(engine):
    from academichub.ingest.pipeline import load_sample_if_empty

    assert load_sample_if_empty(engine).added == 1504
    return engine


@pytest.mark.parametrize("kind", list(NOT_COMPLETIONS))
def test_brief_falls_back_to_the_extractive_briefing(sample_store, database_url, fake, monkeypatch, kind):
    from academichub.cli import app

    fake.script = [NOT_COMPLETIONS[kind]]
    for name, value in (("DATABASE_URL", database_url), ("LLM_MODEL", "fake-model"), ("LLM_BASE_URL", fake.base_url),
                        ("LLM_API_KEY", KEY), ("LOAD_SAMPLE", "false")):
        monkeypatch.setenv(f"ACADEMICHUB_{name}", value)
    result = CliRunner().invoke(app, ["brief", "all", "--date", "2024-11-28", "--lang", "en", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["kind"] == "extractive" and data["model"] == "fake-model" and len(data["papers"]) == 40
    assert data["briefing"]["notes"][0] == "The LLM briefing failed, so this is the extractive briefing."
    assert data["fallback_reason"].startswith(f"{fake.base_url}/chat/completions answered 200 with ")
    warning = " ".join(result.stderr.split())
    assert "warning: LLM briefing failed, extractive briefing instead: " in warning
    assert EXPECTED[kind] in warning
    assert KEY not in result.output and fake.hits == 1


@pytest.mark.parametrize("kind", list(NOT_COMPLETIONS))
def test_api_briefing_falls_back_to_the_extractive_briefing(sample_store, fake, kind):
    from academichub.settings import Settings
    from academichub.web.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    fake.script = [NOT_COMPLETIONS[kind]]
    settings = Settings(load_sample=False, llm_model="fake-model", llm_base_url=fake.base_url, llm_api_key=KEY)
    with TestClient(create_app(settings, engine=sample_store)) as web:
        assert web.get("/api/briefing", params={"date": DAY.isoformat(), "lang": "en"}).status_code == 404  # GET only reads
        response = web.post("/api/briefing", params={"date": DAY.isoformat(), "lang": "en"})
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["kind"] == "extractive" and EXPECTED[kind] in data["fallback_reason"]
        stored = web.get("/api/briefing", params={"date": DAY.isoformat(), "lang": "en"}).json()
        assert stored == {**data, "cached": True}  # GET now reads the one the POST wrote
        assert KEY not in response.text
        page = web.get("/briefing", params={"date": DAY.isoformat(), "lang": "en"})
        assert page.status_code == 200 and "The LLM briefing failed" in page.text
    assert fake.hits == 1  # the page shows the stored fallback


def test_any_failure_of_the_llm_run_falls_back(sample_store, fake, caplog):
    """Even a bug in reading an answer (here a KeyError) costs the LLM briefing, never the briefing."""
    from academichub.brief.briefing import make_briefing
    from academichub.brief.inputs import period_papers

    class BuggyClient(ChatClient):
        def _request(self, messages, *, json_mode):
            raise KeyError("choices")

    settings = load_settings(load_sample=False, llm_model="fake-model", llm_base_url=fake.base_url, llm_api_key=KEY)
    with sample_store.connect() as conn:
        ids = period_papers(conn, DAY, DAY, 10)
    chat = BuggyClient(LLMConfig.from_settings(settings), sleep=lambda s: None)
    b = make_briefing(sample_store, radar_id=None, paper_ids=ids, period=(DAY, DAY), lang="en", settings=settings,
                      client=chat)
    assert b.kind == "extractive" and b.fallback_reason == "the LLM client failed unexpectedly: KeyError"
    assert "the LLM briefing failed unexpectedly" in caplog.text and KEY not in caplog.text
