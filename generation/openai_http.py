"""Any OpenAI-compatible chat server (a vLLM server, llama.cpp's server, Ollama) over HTTP, with SSE streaming."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from core.errors import DossierError, MissingDependency
from core.protocols import GenerationParams, Message

log = logging.getLogger(__name__)


class GenerationServerError(DossierError):
    """The OpenAI-compatible server could not be reached or answered with an error."""


class OpenAIHttpGenerator:
    def __init__(self, base_url: str, *, model: str = "", api_key: str = "", timeout_s: float = 600.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.name = f"openai-http:{self.base_url}"
        self._client: Any = None

    def load(self) -> OpenAIHttpGenerator:
        """Open the connection pool; with no model name, take the server's first model from GET /models."""
        if self._client is not None:
            return self
        try:
            import httpx
        except ImportError as err:
            raise MissingDependency("httpx", extra="serve") from err
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=self.timeout_s)
        if not self.model:
            models = self._request("GET", "/models").json().get("data") or []
            if not models:
                raise GenerationServerError(f"{self.base_url}/models lists no model; set [generation] api_model")
            self.model = models[0]["id"]
        self.name = f"openai-http:{self.model}@{self.base_url}"
        return self

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _body(self, messages: Sequence[Message], params: GenerationParams, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": stream,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.repetition_penalty != 1.0:  # not in OpenAI's schema: vLLM's and llama.cpp's names for it
            body["repetition_penalty"] = body["repeat_penalty"] = params.repetition_penalty
        return body

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise GenerationServerError(f"{self.base_url}{path}: {err}") from err
        if response.status_code >= 400:
            raise GenerationServerError(f"{self.base_url}{path}: HTTP {response.status_code}: {response.text[:300]}")
        return response

    def generate(self, messages: Sequence[Message], params: GenerationParams) -> str:
        self.load()
        reply = self._request("POST", "/chat/completions", json=self._body(messages, params, stream=False)).json()
        return reply["choices"][0]["message"].get("content") or ""

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        import httpx

        self.load()
        body = self._body(messages, params, stream=True)
        try:
            with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise GenerationServerError(f"HTTP {response.status_code}: {response.text[:300]}")
                yield from sse_deltas(response.iter_lines())
        except httpx.HTTPError as err:
            raise GenerationServerError(f"{self.base_url}/chat/completions: {err}") from err


def sse_deltas(lines: Iterator[str]) -> Iterator[str]:
    """The content deltas of an OpenAI chat-completion SSE stream, up to `data: [DONE]`."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # blank separators, `event:` and `:` comment lines
        data = line[5:].strip()
        if data == "[DONE]":
            return
        event = json.loads(data)
        if "error" in event:
            raise GenerationServerError(f"stream error: {event['error']}")
        for choice in event.get("choices") or ():
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                yield piece
