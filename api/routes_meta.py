"""GET /v1/domains, /healthz (the process is up), /readyz (every pipeline is built), /metrics (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import require_api_key
from api.errors import error_response
from api.state import MODEL_PREFIX

router = APIRouter()


@router.get("/v1/domains", dependencies=[Depends(require_api_key)])
def domains(request: Request) -> dict[str, Any]:
    out = []
    for name, pipeline in sorted(request.app.state.pipelines.items()):
        cfg = pipeline.cfg
        out.append({
            "name": name,
            "model": MODEL_PREFIX + name,
            "display_name": cfg.display_name,
            "language": cfg.language,
            "description": cfg.description,
            "disclaimer": cfg.disclaimer,
            "generator": pipeline.generator.name,
        })
    return {"domains": out}


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> Any:
    if not getattr(request.app.state, "ready", False):
        return error_response(503, "not_ready", "pipelines are still being built")
    return {"status": "ready", "domains": sorted(request.app.state.pipelines)}


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
