"""Any OpenAI-compatible chat-completions endpoint, through the `openai` client: OpenAI, DeepSeek,
Qwen (DashScope compatible mode), Moonshot, Zhipu, Ollama, vLLM, llama.cpp server, LM Studio.

- Settings: `llm_base_url` (unset: OpenAI's), `llm_model` (unset: no LLM, briefings are
  extractive), `llm_api_key` (unset: a placeholder, for local servers that want none),
  `llm_timeout`, `llm_retries`, `llm_max_backoff`, `llm_max_tokens`, `llm_temperature`,
  `llm_stream`, `llm_response_format`, `llm_budget_tokens`, `llm_price_per_1k_input/output`.
- Retries: our own loop (the client's is off) on 429, 5xx, timeouts and refused connections. A
  `Retry-After` (seconds or an HTTP date; `retry-after-ms` too) is waited exactly; without one
  the wait doubles from 1 s, capped at `llm_max_backoff`. A server asking for longer than
  `llm_max_backoff` is not retried (the briefing falls back). `sleep` and `clock` are injectable.
- JSON mode: `response_format={"type": "json_object"}` where `llm_response_format` says so; a 400
  answer to it is retried once without it (LM Studio and some llama.cpp builds refuse it), and the
  prompt asks for JSON in words anyway.
- Streaming and non-streaming: a stream accumulates the content deltas and reads `usage` from
  the final chunk (`stream_options.include_usage`); a server that sends none gets an estimate.
- Tokens: `estimate_tokens` uses tiktoken's o200k_base when tiktoken is installed and its
  encoding loads, else this approximation: one token per CJK character (Han, kana, hangul, CJK
  punctuation) plus one per 3.5 other characters, rounded up, plus 4 per message. English runs
  at ~4 characters per OpenAI token, so the approximation over-counts a little: it is a ceiling
  for the budget, never the bill (costs use the server's `usage`).
- Answers that are not chat completions (a 200 with an HTML page, text that is not JSON, JSON of
  another shape, a stream request answered without events) raise `NotACompletion`, an LLMError
  naming the URL and content type, and are not retried; the briefing falls back as for any other
  LLM failure. Non-streamed answers are read raw and checked here, not by the client.
- The API key is passed to the client and nowhere else: never logged, never in an error message.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

from ..errors import AcademicHubError

log = logging.getLogger(__name__)

NO_KEY = "no-key"  # what is sent as the key when none is configured (local servers ignore it)
_MESSAGE_OVERHEAD = 4
_REPLY_OVERHEAD = 3


class LLMError(AcademicHubError):
    """The LLM endpoint failed (after retries), refused the request, or was not asked (budget)."""


class NotACompletion(LLMError):
    """The endpoint answered, but not with a chat completion: an HTML page (a proxy, a login or
    the server's web UI at a wrong `llm_base_url`), text that is not JSON, or JSON of another
    shape. Not retried: the same URL gives the same page."""


class BudgetExceeded(LLMError):
    """The request would cost more tokens than the briefing's budget allows: not sent."""


@dataclass(slots=True)
class LLMConfig:
    model: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 120.0
    retries: int = 3
    max_backoff: float = 60.0
    max_tokens: int = 2500
    temperature: float = 0.2
    stream: bool = False
    response_format: str = "json_object"  # "json_object" | "none"
    budget_tokens: int = 60_000
    price_per_1k_input: float = 0.0
    price_per_1k_output: float = 0.0

    @classmethod
    def from_settings(cls, settings) -> LLMConfig | None:
        """None when no model is configured: briefings are then extractive."""
        model = (getattr(settings, "llm_model", None) or "").strip()
        if not model:
            if getattr(settings, "llm_api_key", None) is not None:
                log.warning("llm_api_key is set but llm_model is not: briefings stay extractive")
            return None
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key is not None else None
        return cls(
            model=model,
            base_url=(settings.llm_base_url or None),
            api_key=key,
            timeout=settings.llm_timeout,
            retries=settings.llm_retries,
            max_backoff=settings.llm_max_backoff,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            stream=settings.llm_stream,
            response_format=settings.llm_response_format,
            budget_tokens=settings.llm_budget_tokens,
            price_per_1k_input=settings.llm_price_per_1k_input,
            price_per_1k_output=settings.llm_price_per_1k_output,
        )

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return round(tokens_in / 1000 * self.price_per_1k_input + tokens_out / 1000 * self.price_per_1k_output, 6)


@dataclass(slots=True)
class Completion:
    content: str
    tokens_in: int
    tokens_out: int
    usage_reported: bool  # False: the server sent no usage, the figures are estimates
    model: str | None = None
    finish_reason: str | None = None
    attempts: int = 1


# ----------------------------------------------------------------------------- tokens


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x2E80 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF or 0x20000 <= code <= 0x2FA1F
    )


@lru_cache(maxsize=1)
def _tiktoken_encoding():
    try:
        import tiktoken  # optional

        return tiktoken.get_encoding("o200k_base")
    except Exception:  # noqa: BLE001 - not installed, or its encoding file cannot be loaded offline
        return None


def estimate_tokens(text: str, *, use_tiktoken: bool = True) -> int:
    """Tokens of a text: tiktoken when available, else the documented approximation."""
    if not text:
        return 0
    encoding = _tiktoken_encoding() if use_tiktoken else None
    if encoding is not None:
        return len(encoding.encode(text, disallowed_special=()))
    cjk = sum(1 for ch in text if _is_cjk(ch))
    return cjk + math.ceil((len(text) - cjk) / 3.5)


def message_tokens(messages: list[dict], *, use_tiktoken: bool = True) -> int:
    return _REPLY_OVERHEAD + sum(_MESSAGE_OVERHEAD + estimate_tokens(str(m.get("content") or ""), use_tiktoken=use_tiktoken)
                                 for m in messages)


# ----------------------------------------------------------------------------- retries


def retry_after_seconds(headers, now: Callable[[], float] = time.time) -> float | None:
    """Seconds a 429/503 asks us to wait: `retry-after-ms`, `Retry-After` in seconds or as an
    HTTP date (relative to `now`). None when absent or unreadable."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            if name == "retry-after-ms":
                continue
            try:
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return None
            if parsed is None:
                return None
            seconds = parsed.timestamp() - now()
        if math.isnan(seconds):
            return None
        return max(0.0, seconds)
    return None


class ChatClient:
    """One configured endpoint. `complete()` sends one chat request (with retries)."""

    def __init__(
        self,
        config: LLMConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
        client: Any = None,
    ):
        self.config = config
        self.sleep = sleep
        self.now = now
        self.json_mode_supported = config.response_format == "json_object"
        if client is None:
            import openai

            client = openai.OpenAI(
                api_key=config.api_key or NO_KEY,
                base_url=config.base_url or None,
                timeout=config.timeout,
                max_retries=0,
            )
        self._client = client
        self.waits: list[float] = []  # every wait taken, for tests and logs

    def _request(self, messages: list[dict], *, json_mode: bool) -> Completion:
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
        }
        if json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        if self.config.stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
            return self._read_stream(self._client.chat.completions.create(**kwargs), messages)
        # The raw answer, parsed here: the client hands back a str for a non-JSON 200 and builds a
        # completion from any JSON without checking it, and either surfaced as a traceback.
        raw = self._client.chat.completions.with_raw_response.create(**kwargs)
        http = raw.http_response
        content, usage, model, finish = _chat_completion(http.content, http.headers.get("content-type"),
                                                         _endpoint(http))
        return self._completion(content, usage, messages, model, finish)

    def _read_stream(self, stream, messages: list[dict]) -> Completion:
        parts: list[str] = []
        usage = None
        model = None
        finish = None
        try:
            for chunk in _guarded(stream):
                model = getattr(chunk, "model", None) or model
                if getattr(chunk, "usage", None):
                    usage = chunk.usage
                for choice in getattr(chunk, "choices", None) or []:
                    delta = getattr(choice, "delta", None)
                    if delta is not None and isinstance(getattr(delta, "content", None), str):
                        parts.append(delta.content)
                    if getattr(choice, "finish_reason", None):
                        finish = choice.finish_reason
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        if not parts and finish is None:
            response = getattr(stream, "response", None)
            content_type = response.headers.get("content-type") if response is not None else None
            if response is not None and "event-stream" not in (content_type or ""):
                raise NotACompletion(f"{_endpoint(response)} answered {response.status_code} with "
                                     f"{_media_type(content_type)}, not a stream of chat completion chunks")
            raise _StreamBroken("the stream ended without content or finish_reason")
        return self._completion("".join(parts), usage, messages, model, finish)

    def _completion(self, content: str, usage, messages: list[dict], model, finish) -> Completion:
        if isinstance(usage, dict):
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        else:
            prompt = getattr(usage, "prompt_tokens", None) if usage is not None else None
            completion = getattr(usage, "completion_tokens", None) if usage is not None else None
        reported = _count(prompt) and _count(completion)
        if not reported:
            prompt = message_tokens(messages)
            completion = estimate_tokens(content)
        return Completion(content=content, tokens_in=int(prompt), tokens_out=int(completion), usage_reported=reported,
                          model=model if isinstance(model, str) else None,
                          finish_reason=finish if isinstance(finish, str) else None)

    def complete(self, messages: list[dict], *, json_mode: bool = True) -> Completion:
        """One answer, retried on 429/5xx/timeouts/connection errors as the module says."""
        import openai

        json_mode = json_mode and self.json_mode_supported
        attempt = 0
        while True:
            attempt += 1
            try:
                result = self._request(messages, json_mode=json_mode)
                result.attempts = attempt
                return result
            except openai.BadRequestError as exc:
                if json_mode:
                    log.info("the LLM endpoint refused response_format=json_object (%s): asking without it", _status(exc))
                    self.json_mode_supported = False
                    json_mode = False
                    attempt -= 1
                    continue
                raise LLMError(f"the LLM endpoint refused the request: {_describe(exc)}") from None
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status != 429 and status < 500:
                    raise LLMError(f"the LLM endpoint answered {status}: {_describe(exc)}") from None
                wait = retry_after_seconds(getattr(exc.response, "headers", None), self.now)
                reason = f"HTTP {status}"
            except (openai.APITimeoutError, openai.APIConnectionError, _StreamBroken) as exc:
                wait = None
                reason = type(exc).__name__ if not isinstance(exc, _StreamBroken) else f"stream broken ({exc})"
            except NotACompletion:
                raise  # a web page or another API at the URL: asking again gets the same answer
            except openai.OpenAIError as exc:
                raise LLMError(f"the LLM client failed: {type(exc).__name__}") from None
            if attempt > self.config.retries:
                raise LLMError(f"the LLM endpoint failed {attempt} times (last: {reason})")
            if wait is None:
                wait = min(self.config.max_backoff, 2.0 ** (attempt - 1))
            elif wait > self.config.max_backoff:
                raise LLMError(
                    f"the LLM endpoint asks to wait {wait:.0f} s ({reason}), longer than llm_max_backoff "
                    f"({self.config.max_backoff:.0f} s)"
                )
            log.info("LLM request failed (%s); retrying in %.1f s", reason, wait)
            self.waits.append(wait)
            self.sleep(wait)


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip()[:80] or "no Content-Type"


def _endpoint(response) -> str:
    """The URL that answered, without userinfo or query (never a secret in an error message)."""
    url = response.request.url
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


def _chat_completion(body: bytes, content_type: str | None, endpoint: str) -> tuple[str, Any, Any, Any]:
    """(content, usage, model, finish_reason) of a chat.completion body, or NotACompletion saying
    what came instead. Only the shape we read is checked; extra fields are any server's own."""
    answered = f"{endpoint} answered 200 with {_media_type(content_type)} ({len(body)} bytes)"
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise NotACompletion(f"{answered} that is not JSON, not a chat completion") from exc
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list):
        raise NotACompletion(f"{answered}: JSON without a choices list, not a chat completion")
    if not choices:
        return "", data.get("usage"), data.get("model"), None
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(message, dict) or not isinstance(content, (str, type(None))):
        raise NotACompletion(f"{answered}: choices[0] has no message with text content, not a chat completion")
    return content or "", data.get("usage"), data.get("model"), choice.get("finish_reason")


class _StreamBroken(Exception):
    """The connection broke while a streamed answer was being read (retried like a refused one)."""


def _guarded(stream):
    import openai

    iterator = iter(stream)
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except openai.APIStatusError:
            raise
        except Exception as exc:  # noqa: BLE001 - a read error of the transport, an error event
            raise _StreamBroken(type(exc).__name__) from None
        yield chunk


def _status(exc) -> str:
    return f"HTTP {getattr(exc, 'status_code', '?')}"


def _describe(exc) -> str:
    """The server's error message, never request details (the key is in a header, not here)."""
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else str(error)
    text = str(message or getattr(exc, "message", "") or type(exc).__name__)
    return " ".join(text.split())[:300]
