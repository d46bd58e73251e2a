"""GET /v1/domains (those the key may use), /healthz (the process is up), /readyz (every pipeline is built; else
what is still being prepared, per domain, and how long it will take), /metrics (Prometheus; an admin key once keys
exist)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import allowed_domains, require_admin, require_api_key
from api.errors import error_body
from api.preparation import Preparer
from api.state import MODEL_PREFIX

router = APIRouter()


@router.get("/v1/domains", dependencies=[Depends(require_api_key)])
def domains(request: Request) -> dict[str, Any]:
    """Every served domain with `ready`; one still being prepared also has `state` and `reason`."""
    preparation: Preparer = request.app.state.preparation
    out = []
    for name in allowed_domains(request, sorted(preparation.domains)):
        pipeline = request.app.state.pipelines.get(name)
        cfg = pipeline.cfg if pipeline is not None else preparation.config(name)
        entry = {
            "name": name,
            "model": MODEL_PREFIX + name,
            "ready": pipeline is not None,
            "display_name": cfg.display_name,
            "language": cfg.language,
            "description": cfg.description,
            "disclaimer": cfg.disclaimer,
            "generator": pipeline.generator.name if pipeline is not None else None,
        }
        if pipeline is None:
            status = preparation.describe(name)
            entry |= {"state": status["state"], "reason": status["reason"]}
        out.append(entry)
    return {"domains": out}


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> Any:
    """200 {"status": "ready", "domains": [...]} when every domain is ready; else 503 in the error envelope with
    `ready` (the domains answering already) and `not_ready` (per domain: state, reason, eta_s and its steps)."""
    preparation: Preparer = request.app.state.preparation
    if preparation.all_ready():
        return {"status": "ready", "domains": sorted(request.app.state.pipelines)}
    statuses = {d: preparation.describe(d) for d in preparation.domains}
    waiting = {d: s for d, s in statuses.items() if s["state"] != "ready"}
    body = error_body("not_ready", "; ".join(f"domain {d}: {s['reason']}" for d, s in waiting.items()))
    body |= {"ready": sorted(set(statuses) - set(waiting)), "not_ready": waiting}
    return JSONResponse(body, status_code=503)


@router.get("/metrics", dependencies=[Depends(require_admin)])
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
