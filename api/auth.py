"""Who is asking, and may they. Keys come from the key file (hashed, scoped: api/keys.py, `dossier keys`) and,
the simple path, from env DOSSIER_API_KEYS (comma-separated plain keys with full scope, ids env-1, env-2...).
Once either holds a key, every /v1 route needs `Authorization: Bearer <key>` and /metrics an admin key; with none,
requests are anonymous with full scope (loopback only: `dossier serve` refuses a wider host without keys).
/healthz and /readyz stay open for probes. Every /v1 request then takes a token from its caller's rate bucket.
"""

from __future__ import annotations

import hmac
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request

from api.errors import ApiError
from api.keys import FULL_SCOPE, KeyStore, Scopes
from api.limits import RateLimiter

API_KEYS_ENV = "DOSSIER_API_KEYS"
UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def keys_from_env() -> tuple[str, ...]:
    return tuple(dict.fromkeys(k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",") if k.strip()))


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request: `id` is the key id (None: anonymous), what the audit log and buckets use."""

    id: str | None
    scopes: Scopes = FULL_SCOPE
    revoked_at: str | None = None  # a genuine key that was revoked: refused, but the audit log knows whose


@dataclass(frozen=True)
class AccessControl:
    env_keys: Sequence[str]
    store: KeyStore | None
    limiter: RateLimiter

    def required(self) -> bool:
        return bool(self.env_keys) or (self.store is not None and self.store.has_keys())

    def authenticate(self, token: str, client: str) -> Principal:
        """The key's principal; 401 for a missing or unknown key. A key not verified before is charged to the
        client address's bucket first, so guessing costs the guesser, not the server's CPU."""
        if not token:
            raise ApiError(401, "unauthorized", "this server needs an API key: Authorization: Bearer <key>",
                           UNAUTHORIZED)
        for i, key in enumerate(self.env_keys, start=1):
            if hmac.compare_digest(token.encode(), key.encode()):
                return Principal(f"env-{i}")
        record = None
        if self.store is not None:
            if not self.store.is_verified(token):
                self.limit(f"addr:{client}", "this address")
            record = self.store.verify(token)
        if record is None:
            raise ApiError(401, "unauthorized", "wrong API key", UNAUTHORIZED)
        return Principal(record.id, record.scopes, record.revoked_at if record.revoked else None)

    def limit(self, bucket: str, who: str) -> None:
        """429 with Retry-After when `bucket` is empty."""
        wait_s = self.limiter.take(bucket)
        if wait_s > 0:
            retry_s = max(1, math.ceil(wait_s))
            raise ApiError(429, "rate_limited", f"{who} is over {self.limiter.describe()}; retry in {retry_s} s",
                           {"Retry-After": str(retry_s)})


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _caller(request: Request) -> Principal:
    """The request's principal, also kept on request.state for the audit log; 401 for a missing, wrong or
    revoked key. Anonymous (full scope) while no key exists."""
    access: AccessControl = request.app.state.access
    if not access.required():
        principal = Principal(None)
    else:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        principal = access.authenticate(token.strip() if scheme.lower() == "bearer" else "", _client(request))
    request.state.principal = principal
    if principal.revoked_at:
        raise ApiError(401, "unauthorized", f"API key {principal.id} was revoked ({principal.revoked_at})",
                       UNAUTHORIZED)
    return principal


def require_api_key(request: Request) -> Principal:
    """The /v1 routes' dependency: who is asking, then a token from their bucket (by key, else client address)."""
    principal = _caller(request)
    bucket, who = (f"key:{principal.id}", f"key {principal.id}") if principal.id else (
        f"addr:{_client(request)}", f"client {_client(request)}")
    request.app.state.access.limit(bucket, who)
    return principal


def require_admin(request: Request) -> None:
    """Admin routes: an admin key once keys exist (open while none does, which serve allows on loopback only)."""
    principal = _caller(request)
    if not principal.scopes.admin:
        raise ApiError(403, "forbidden", f"key {principal.id} is not an admin key; this route needs one")


def allowed_domains(request: Request, domains: Sequence[str]) -> list[str]:
    principal: Principal = getattr(request.state, "principal", Principal(None))
    return [d for d in domains if principal.scopes.allows_domain(d)]


def authorize_domain(request: Request, domain: str) -> None:
    """403 when the request's key may not use `domain` (routes name it in the body or as `dossier-<domain>`)."""
    request.state.domain = domain
    principal: Principal = getattr(request.state, "principal", Principal(None))
    if not principal.scopes.allows_domain(domain):
        mine = ", ".join(principal.scopes.domains or ()) or "none"
        raise ApiError(403, "forbidden", f"key {principal.id} may not use domain {domain!r}; its domains: {mine}")
