"""The REST client the Streamlit app uses: it talks to Dossier like any other client (env DOSSIER_API_URL,
optional DOSSIER_API_KEY as a bearer token)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"


class DossierApiError(Exception):
    """The API answered with an error body {"error": {"code", "reason"}}, or could not be reached."""


class DossierClient:
    def __init__(self, base_url: str | None = None, api_key: str | None = None, timeout_s: float = 600.0) -> None:
        self.base_url = (base_url or os.environ.get("DOSSIER_API_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("DOSSIER_API_KEY", "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise DossierApiError(f"{error['code']}: {error['reason']}")
            except (ValueError, KeyError, TypeError):
                raise DossierApiError(f"HTTP {response.status_code}: {response.text[:200]}") from None
        return response.json()

    def domains(self) -> list[dict[str, Any]]:
        try:
            return self._check(self.http.get("/v1/domains"))["domains"]
        except httpx.HTTPError as err:
            raise DossierApiError(f"cannot reach {self.base_url}: {err}") from err

    def ask_stream(self, domain: str, question: str, history: list[dict], k: int | None = None) -> Iterator[dict]:
        """Events {"delta": text} then {"answer": {...}} (the /v1/ask SSE stream)."""
        body = {"domain": domain, "question": question, "history": history, "stream": True}
        if k:
            body["k"] = k
        try:
            with self.http.stream("POST", "/v1/ask", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response)
                for line in response.iter_lines():
                    if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                        continue
                    event = json.loads(line[5:])
                    if "error" in event:
                        raise DossierApiError(f"{event['error']['code']}: {event['error']['reason']}")
                    yield event
        except httpx.HTTPError as err:
            raise DossierApiError(f"cannot reach {self.base_url}: {err}") from err

    def feedback(self, domain: str, question: str, answer: str, *, rating: str | None = None,
                 preferred: str | None = None, history: list[dict] | None = None) -> dict[str, Any]:
        body = {"domain": domain, "question": question, "answer": answer, "history": history or []}
        if rating:
            body["rating"] = rating
        if preferred:
            body["preferred"] = preferred
        return self._check(self.http.post("/v1/feedback", json=body))
