"""`create_app`: the FastAPI app. Its lifespan has one `RagPipeline` built per served domain, once, and kept on
`app.state`; routes only look them up. Built before serving, or in the background while serving
(`api.preparation`), in which case a domain answers 503 until it is ready. Around the routes, outermost first:
CORS (when origins are given), the audit log (when given), the body limit, metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from api import routes_ask, routes_collections, routes_conversations, routes_meta, routes_openai
from api.audit import AuditLog, AuditMiddleware
from api.auth import AccessControl, keys_from_env
from api.collections import Collections
from api.conversations import ConversationStore
from api.errors import install_error_handlers
from api.feedback import JsonlFeedbackStore
from api.keys import KeyStore
from api.limits import Limits, RateLimiter
from api.metrics import MetricsMiddleware, ServiceMetrics
from api.owner import OWNER_HEADER
from api.preparation import PreparationPlan, Preparer
from api.upload_limit import BodyLimits
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
    keys_file: Path | None = None,
    limits: Limits | None = None,
    audit: AuditLog | None = None,
    cors_origins: Sequence[str] = (),
    feedback: JsonlFeedbackStore | None = None,
    conversations: ConversationStore | None = None,
    collections_root: Path | None = None,
    upload_max_bytes: int | None = None,
) -> FastAPI:
    """An app serving `domains`; `build(domain)` makes each pipeline. With `preparation` None every pipeline is
    built before the server accepts requests; with a plan (`dossier serve`) the server listens at once and
    prepares what is missing in the background. Auth is on while `api_keys` (plain keys with full scope; None
    reads DOSSIER_API_KEYS) or the key file `keys_file` (hashed and scoped, api/keys.py; None: no file) holds a
    key. `limits`: rate, body size, answer deadline (default: no rate limit); `cors_origins`: the browser origins
    allowed to call the API (none by default); `conversations`: where conversations are kept (default
    $DOSSIER_HOME/conversations.sqlite); `collections_root`: where uploaded files and their indexes are kept
    (default $DOSSIER_HOME/collections); `upload_max_bytes`: the largest upload (default env DOSSIER_UPLOAD_MAX_MB,
    else 50 MiB)."""
    metrics = ServiceMetrics.create()
    limits = limits or Limits()
    store = KeyStore(keys_file) if keys_file is not None else None
    if store is not None:
        store.has_keys()  # a key file that does not parse stops the app here, not at its first request

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
        await run_in_threadpool(app.state.collections.stop)
        app.state.ready = False
        metrics.ready.set(0)
        if audit is not None:
            audit.close()

    app = FastAPI(title="Dossier", version="0.1.0", lifespan=lifespan,
                  description="Domain answers that cite their evidence, or say the corpus does not cover it.")
    app.state.pipelines = {}
    app.state.preparation = preparer
    app.state.ready = False
    app.state.started = int(time.time())
    app.state.metrics = metrics
    env_keys = tuple(api_keys) if api_keys is not None else keys_from_env()
    app.state.access = AccessControl(env_keys, store, RateLimiter(limits.requests_per_minute, limits.burst))
    app.state.limits = limits
    app.state.feedback = feedback or JsonlFeedbackStore()
    app.state.conversations = conversations or ConversationStore()
    app.state.collections = Collections(app.state.pipelines.get, collections_root, upload_max_bytes=upload_max_bytes)
    install_error_handlers(app)
    for module in (routes_ask, routes_openai, routes_meta, routes_conversations, routes_collections):
        app.include_router(module.router)
    _add_middleware(app, metrics, limits, audit, cors_origins)
    return app


def _add_middleware(app: FastAPI, metrics: ServiceMetrics, limits: Limits, audit: AuditLog | None,
                    cors_origins: Sequence[str]) -> None:
    # Starlette wraps each one added around the ones before: CORS goes last, so refusals carry its headers too
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(BodyLimits, limit=limits.max_body_bytes, upload_cap=app.state.collections.upload_max_bytes)
    if audit is not None:
        app.add_middleware(AuditMiddleware, audit=audit)
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins),
                           allow_methods=["GET", "POST", "DELETE"],  # DELETE: conversations, uploaded files
                           allow_headers=["Authorization", "Content-Type", OWNER_HEADER],
                           expose_headers=["Retry-After", "Content-Disposition"])
