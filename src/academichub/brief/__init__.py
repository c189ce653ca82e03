"""The daily briefing: an analysis of a radar's top papers for a period (themes, cross-domain
links, picks, what changed since the previous period), written up by an LLM where one is
configured, every claim citing its paper, or extractively (quoted sentences, no LLM) otherwise.

- `inputs`: the papers as the briefing sees them (numbered 1..N, with embeddings).
- `analysis`: deterministic clustering, key phrases, cross-domain pairs, change detection.
- `llm`: any OpenAI-compatible chat-completions endpoint, with retries, a token budget and costs.
- `schema`: the JSON the model must return, the prompt, validation and the one stricter retry.
- `grounding`: citations and numbers checked against the input; abstracts are untrusted data.
- `extractive`: the no-LLM briefing from the same analysis (zh and en).
- `briefing`: orchestration, caching in the store, Markdown and JSON output.
- `text`, `background`: sentences, key-phrase candidates, quoted figures; how generic a phrase is.
"""
