"""The REST face: `create_app(domains)` builds a FastAPI app whose lifespan builds one pipeline per domain."""

from api.app import create_app

__all__ = ["create_app"]
