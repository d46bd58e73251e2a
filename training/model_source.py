"""Where a training base model's config and tokenizer are read from: its transformers dir when fetched, else the
GGUF a registry model is converted from (the 1.5B generator before its ~8 GB conversion), so `dossier train plan`
checks a recipe on a machine that will never train it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import ModelNotFound
from models.registry import MODELS, gguf_file, is_fetched, resolve_model


@dataclass(frozen=True, slots=True)
class ModelSource:
    path: str
    gguf: str | None = None  # a GGUF file in `path` to read config and tokenizer from (no transformers dir yet)

    def kwargs(self) -> dict[str, str]:
        return {"gguf_file": self.gguf} if self.gguf else {}


def model_source(ref: str) -> ModelSource:
    """Where to read `ref`'s config: its transformers dir when fetched, else the GGUF it is converted from."""
    try:
        return ModelSource(resolve_model(ref))
    except ModelNotFound:
        spec = MODELS.get(ref)
        if spec is None or spec.assembly != "gguf-to-bf16" or not is_fetched(spec.derived_from):
            raise
    found = Path(gguf_file(spec.derived_from))
    return ModelSource(str(found.parent), found.name)
