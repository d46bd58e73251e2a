"""`create_app`: the FastAPI app. Its lifespan has one `RagPipeline` built per served domain, once, and kept on
`app.state`; routes only look them up. Built before serving, or in the background while serving
(`api.preparation`), in which case a domain answers 503 until it is ready."""

from __future__ import annotations

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
from api.preparation import PreparationPlan, Preparer
from rag.pipeline import RagPipeline

PipelineBuilder = Callable[[str], RagPipeline]


def default_builder(domain: str, backend: str | None = None) -> RagPipeline:
    from domains import load_domain
    from rag.build import build_pipeline

    return build_pipeline(load_domain(domain), backend=backend)


def create_app(
    domains: Sequence[str],
    *,
    build: PipelineBuilder = default_builder,
    preparation: PreparationPlan | None = None,
    api_keys: Sequence[str] | None = None,
    feedback: JsonlFeedbackStore | None = None,
) -> FastAPI:
    """An app serving `domains`; `build(domain)` makes each pipeline. With `preparation` None every pipeline is
    built before the server accepts requests; with a plan (`dossier serve`) the server listens at once and
    prepares what is missing in the background. `api_keys` None reads DOSSIER_API_KEYS; an empty list turns auth
    off."""
    metrics = ServiceMetrics.create()

    def on_ready(domain: str, pipeline: RagPipeline) -> None:
        app.state.pipelines[domain] = pipeline
        if set(app.state.pipelines) >= set(preparer.domains):
            app.state.ready = True
            metrics.ready.set(1)

    preparer = Preparer(domains, build, preparation or PreparationPlan(), on_ready)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if preparation is None:
            await run_in_threadpool(preparer.prepare_all)
        else:
            preparer.start()
        yield
        await run_in_threadpool(preparer.stop)
        app.state.ready = False
        metrics.ready.set(0)

    app = FastAPI(title="Dossier", version="0.1.0", lifespan=lifespan,
                  description="Domain answers that cite their evidence, or say the corpus does not cover it.")
    app.state.pipelines = {}
    app.state.preparation = preparer
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
