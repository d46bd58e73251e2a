"""The REST client the Streamlit app uses: it talks to Dossier like any other client (env DOSSIER_API_URL,
optional DOSSIER_API_KEY as a bearer token). Without a key the caller names itself with `X-Dossier-User`: the
server keeps conversations and uploaded collections per owner, and the app is one owner per browser session."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
OWNER_HEADER = "X-Dossier-User"
OWNER_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")  # what the server accepts as an owner id
UPLOAD_TIMEOUT_S = 300.0  # a 60 MB file over loopback on a busy machine


class DossierApiError(Exception):
    """The API answered with an error body {"error": {"code", "reason"}}, or could not be reached (status 0)."""

    def __init__(self, message: str, status: int = 0, code: str = "unreachable", reason: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.reason = status, code, reason or message


def _error_of(response: httpx.Response) -> DossierApiError:
    try:
        error = response.json()["error"]
        code, reason = str(error["code"]), str(error["reason"])
    except (ValueError, KeyError, TypeError):
        code, reason = f"http_{response.status_code}", response.text[:200] or response.reason_phrase
    return DossierApiError(f"{code}: {reason}", response.status_code, code, reason)


class DossierClient:
    def __init__(self, base_url: str | None = None, api_key: str | None = None, owner: str | None = None,
                 timeout_s: float = 600.0) -> None:
        self.base_url = (base_url or os.environ.get("DOSSIER_API_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("DOSSIER_API_KEY", "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if owner and not key:  # with a key, the key is the owner
            if not OWNER_ID.fullmatch(owner):
                raise ValueError(f"owner id {owner!r}: 8-64 characters of A-Z a-z 0-9 _ -")
            headers[OWNER_HEADER] = owner
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise DossierApiError(f"cannot reach {self.base_url}: {err}") from err
        if response.status_code >= 400:
            raise _error_of(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._call(method, path, **kwargs).json()

    # --- the corpus ---------------------------------------------------------------------------------------------

    def domains(self) -> list[dict[str, Any]]:
        return self._json("GET", "/v1/domains")["domains"]

    def ask_stream(self, domain: str, question: str, history: list[dict], k: int | None = None,
                   filters: dict[str, Any] | None = None, conversation_id: str | None = None,
                   collection: bool = False) -> Iterator[dict]:
        """Events {"evidence": [...]}, {"delta": text}, then {"answer": {...}} (the /v1/ask SSE stream)."""
        body: dict[str, Any] = {"domain": domain, "question": question, "history": history, "stream": True}
        optional = {"k": k, "filters": filters or None, "conversation_id": conversation_id,
                    "collection": collection or None}
        body |= {key: value for key, value in optional.items() if value}
        try:
            with self.http.stream("POST", "/v1/ask", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_of(response)
                yield from _sse_events(response.iter_lines())
        except httpx.HTTPError as err:
            raise DossierApiError(f"cannot reach {self.base_url}: {err}") from err

    def feedback(self, domain: str, question: str, answer: str, *, rating: str | None = None,
                 preferred: str | None = None, history: list[dict] | None = None) -> dict[str, Any]:
        body = {"domain": domain, "question": question, "answer": answer, "history": history or []}
        if rating:
            body["rating"] = rating
        if preferred:
            body["preferred"] = preferred
        return self._json("POST", "/v1/feedback", json=body)

    # --- conversations, stored by the server per owner -----------------------------------------------------------

    def create_conversation(self, domain: str, title: str | None = None) -> dict[str, Any]:
        body = {"domain": domain} | ({"title": title} if title else {})
        return self._json("POST", "/v1/conversations", json=body)

    def conversations(self) -> list[dict[str, Any]]:
        return self._json("GET", "/v1/conversations")["conversations"]

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/conversations/{conversation_id}")

    def delete_conversation(self, conversation_id: str) -> None:
        self._call("DELETE", f"/v1/conversations/{conversation_id}")

    def export_conversation(self, conversation_id: str, fmt: str) -> bytes:
        """The conversation with its sources as a file: fmt "md" (Markdown) or "docx"."""
        return self._call("GET", f"/v1/conversations/{conversation_id}/export", params={"format": fmt}).content

    # --- the owner's private collection of a domain -------------------------------------------------------------

    def upload(self, domain: str, name: str, data: bytes, mime: str | None = None) -> dict[str, Any]:
        """202 {file_id, name, status}; a refused file raises DossierApiError with the server's reason."""
        files = {"file": (name, data, mime or "application/octet-stream")}
        return self._json("POST", f"/v1/collections/{domain}/files", files=files, timeout=UPLOAD_TIMEOUT_S)

    def collection(self, domain: str) -> dict[str, Any]:
        """{domain, files: [{file_id, name, status, chunks, error?, progress?}], chunks}."""
        return self._json("GET", f"/v1/collections/{domain}")

    def delete_file(self, domain: str, file_id: str) -> None:
        self._call("DELETE", f"/v1/collections/{domain}/files/{file_id}")

    def delete_collection(self, domain: str) -> None:
        self._call("DELETE", f"/v1/collections/{domain}")


def _sse_events(lines: Iterator[str]) -> Iterator[dict]:
    for line in lines:
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        event = json.loads(line[5:])
        if "error" in event:
            error = event["error"]
            raise DossierApiError(f"{error['code']}: {error['reason']}", 200, error["code"], error["reason"])
        yield event
