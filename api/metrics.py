"""Prometheus metrics in a registry of the app's own (so two apps in one process do not collide)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)  # seconds


@dataclass(frozen=True)
class ServiceMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    answers: Counter
    citations_removed: Counter
    ready: Gauge

    @classmethod
    def create(cls) -> ServiceMetrics:
        reg = CollectorRegistry()
        return cls(
            registry=reg,
            requests=Counter("dossier_requests", "HTTP requests", ["route", "method", "status"], registry=reg),
            latency=Histogram(
                "dossier_request_seconds", "request latency", ["route"], buckets=LATENCY_BUCKETS, registry=reg
            ),
            answers=Counter("dossier_answers", "answers given", ["domain", "abstained"], registry=reg),
            citations_removed=Counter(
                "dossier_citations_removed", "citations to passages not given", ["domain"], registry=reg
            ),
            ready=Gauge("dossier_ready", "1 when every pipeline is built", registry=reg),
        )


class MetricsMiddleware:
    """Counts requests by route template (not raw path: bounded label values) and status, and times them up
    to the last byte of the response (so streamed answers count whole)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - t0)
