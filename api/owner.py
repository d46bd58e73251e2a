"""Whose a stored thing is (conversations, private collections): every row carries its owner, and a request only
ever sees its own owner's rows. Someone else's id answers 404, as if it did not exist: a 403 would confirm it does.

With API keys on, the owner is the caller's key id; the `X-Dossier-User` header is then ignored, so a key cannot
reach another key's rows by naming them. Without keys (loopback only, `dossier serve` refuses a wider host), the
owner is that header: an opaque id the app makes once per browser session, 8-64 of [A-Za-z0-9_-]; no header is
the owner "anonymous". The two kinds are stored with different prefixes, so a header never equals a key's owner.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from fastapi import Request

from api.auth import Principal, authorize_domain
from api.errors import ApiError

OWNER_HEADER = "X-Dossier-User"
ANONYMOUS = "anonymous"
_USER_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def owner_of(request: Request) -> str:
    """The owner of what this request stores or reads; 400 for a malformed `X-Dossier-User`. Call it after the
    router's auth dependency, which puts the principal on `request.state`."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None and principal.id is not None:
        return f"key:{principal.id}"
    user = request.headers.get(OWNER_HEADER)
    if user is None:
        return ANONYMOUS
    if not _USER_ID.fullmatch(user):
        raise ApiError(400, "bad_request", f"{OWNER_HEADER} must be 8 to 64 characters of A-Z, a-z, 0-9, _ and -")
    return f"user:{user}"


def served_domain(request: Request, domain: str) -> None:
    """403 when the caller's key may not use `domain`, 404 when it is not served here. Unlike `pipeline_for`, a
    domain still being prepared passes: its conversations and collection can be listed before it answers."""
    authorize_domain(request, domain)
    served: Collection[str] = request.app.state.preparation.domains
    if domain not in served:
        names = ", ".join(sorted(served)) or "none"
        raise ApiError(404, "unknown_domain", f"domain {domain!r} is not served here; served: {names}")
