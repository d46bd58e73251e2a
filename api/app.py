"""`create_app`: the FastAPI app. Its lifespan builds one `RagPipeline` per served domain, once, and keeps them
on `app.state`; routes only look them up."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api import routes_ask, routes_meta, routes_openai
from api.auth import keys_from_env
from api.errors import BodyLimitMiddleware, install_error_handlers
from api.feedback import JsonlFeedbackStore
from api.metrics import MetricsMiddleware, ServiceMetrics
from rag.pipeline import RagPipeline

log = logging.getLogger(__name__)

PipelineBuilder = Callable[[str], RagPipeline]


def default_builder(domain: str, backend: str | None = None) -> RagPipeline:
    from domains import load_domain
    from rag.build import build_pipeline

    return build_pipeline(load_domain(domain), backend=backend)


def create_app(
    domains: Sequence[str],
    *,
    build: PipelineBuilder = default_builder,
    api_keys: Sequence[str] | None = None,
    feedback: JsonlFeedbackStore | None = None,
) -> FastAPI:
    """An app serving `domains`; `build(domain)` makes each pipeline at start-up. `api_keys` None reads
    DOSSIER_API_KEYS; an empty list turns auth off."""
    metrics = ServiceMetrics.create()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for domain in domains:
            t0 = time.perf_counter()
            app.state.pipelines[domain] = await run_in_threadpool(build, domain)
            log.info("domain %s ready in %.1f s", domain, time.perf_counter() - t0)
        app.state.ready = True
        metrics.ready.set(1)
        yield
        app.state.ready = False
        metrics.ready.set(0)

    app = FastAPI(title="Dossier", version="0.1.0", lifespan=lifespan,
                  description="Domain answers that cite their evidence, or say the corpus does not cover it.")
    app.state.pipelines = {}
    app.state.ready = False
    app.state.started = int(time.time())
    app.state.metrics = metrics
    app.state.api_keys = frozenset(api_keys) if api_keys is not None else keys_from_env()
    app.state.feedback = feedback or JsonlFeedbackStore()
    install_error_handlers(app)
    for module in (routes_ask, routes_openai, routes_meta):
        app.include_router(module.router)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(BodyLimitMiddleware)
    return app
