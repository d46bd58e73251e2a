"""Optional bearer-token auth: when API keys are configured (env DOSSIER_API_KEYS, comma-separated), every
/v1 route needs `Authorization: Bearer <key>`; health, readiness and metrics stay open for probes."""

from __future__ import annotations

import hmac
import os

from fastapi import Request

from api.errors import ApiError

API_KEYS_ENV = "DOSSIER_API_KEYS"


def keys_from_env() -> frozenset[str]:
    return frozenset(k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",") if k.strip())


def require_api_key(request: Request) -> None:
    keys: frozenset[str] = request.app.state.api_keys
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and any(hmac.compare_digest(token.strip(), k) for k in keys):
        return
    raise ApiError(401, "unauthorized", "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})
