"""`dossier export edge --domain D [--adapter served|shipped|none|PATH] [--quant Q] [--output-quant Q] [--faiss-sq8]
[--small] --out DIR`: the domain as one offline folder and its .tar.gz (edge/export/bundle.py), answered from by
`python -m edge`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge.layout import EMBEDDER_GRAPHS, WEIGHTS_ONLY


def register(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="package a domain for somewhere else")
    kinds = export.add_subparsers(dest="kind", required=True, metavar="KIND")
    edge = kinds.add_parser("edge", help="an offline bundle: GGUF generator, ONNX int8 embedder, index, runner")
    edge.add_argument("--domain", required=True)
    edge.add_argument("--out", required=True, type=Path, help="the bundle folder; DIR.tar.gz is written beside it")
    edge.add_argument("--adapter", default="served", help="the generator's tuned LoRA to merge: served (what the "
                      "service answers with: the domain's shipped adapter where domain.toml names one, else the base "
                      "GGUF; default), shipped (the domain's own, an error where it has none), none (the base GGUF) "
                      "or a peft adapter dir")
    edge.add_argument("--quant", help="requantise the GGUF with llama.cpp: q4_k_m, q8_0, q5_k_m, ... (default: as "
                      "shipped; q4_k_m after a merge)")
    edge.add_argument("--output-quant", help="the output projection's own type: q4_0, q5_0, q8_0, iq4_nl, ... "
                      "(default: llama.cpp's choice for --quant; the 0.5B's is Q8_0, 138 of its 469 MiB); for a tied "
                      "model (Qwen2.5 0.5B / 1.5B), tied: one copy of its token table / output matrix, the more "
                      "precise (469 -> 379 MiB, the projection as shipped), or tied-table: the token table's (-> "
                      "331 MiB, the projection in Q5_0); no --quant needed, every layer stays as shipped")
    edge.add_argument("--small", action="store_true", help="a third of the full build: --output-quant tied "
                      "--faiss-sq8 --embedder-int8 weights (options given explicitly still win); edge/README.md has "
                      "its figures")
    edge.add_argument("--faiss-sq8", action="store_true", help="8-bit scalar-quantised FAISS vectors (1/4 size)")
    edge.add_argument("--embedder-int8", choices=EMBEDDER_GRAPHS, help="matmul: the "
                      "product's onnx-int8 graph (default); all: its token table int8 too (EmbeddingGemma 981 -> "
                      "377 MB); all-fp16: and the fp32 down-projections stored as fp16 (-81 -> 41 MB); weights: "
                      "every weight stored int8 and computed in fp32, no activation quantisation: the fp32 "
                      "graph's query vectors within weight rounding, the smallest graph")
    edge.add_argument("--embedder-vocab", choices=("domain", "full"), default="domain", help="domain: keep the "
                      "tokens the domain's chunks use, every CJK and single-character token and common English "
                      "pieces (EmbeddingGemma's token table 262k -> ~50k rows; default); full: all of them")
    edge.add_argument("--index-dir", type=Path, help="an index root or version dir (default: the domain's)")
    edge.add_argument("--threads", type=int, default=1, help="threads for the quantiser and the embedder check")
    edge.add_argument("--force", action="store_true", help="replace an existing bundle at --out")
    edge.set_defaults(handler=_edge)


# --small: the recipe measured at a third of the full build with the least change to the generator and the query
# vectors (edge/README.md)
SMALL = {"output_quant": "tied", "faiss_sq8": True, "embedder_int8": WEIGHTS_ONLY}
PLAIN = {"output_quant": None, "faiss_sq8": False, "embedder_int8": "matmul"}


def size_options(args: argparse.Namespace) -> dict[str, object]:
    """The three size options: each as given, else the --small recipe's, else the default."""
    preset = SMALL if args.small else PLAIN
    return {name: getattr(args, name) or preset[name] for name in preset}


def _edge(args: argparse.Namespace) -> int:
    from domains import load_domain
    from edge.export.bundle import ExportRequest, export_edge

    result = export_edge(ExportRequest(
        load_domain(args.domain), args.out, adapter=args.adapter, quant=args.quant, **size_options(args),
        embedder_vocab=args.embedder_vocab, index_dir=args.index_dir, threads=args.threads, force=args.force,
    ))
    total = sum(f["size"] for f in result.manifest["files"].values())
    print(json.dumps({"folder": str(result.folder), "archive": str(result.archive), "files": len(
        result.manifest["files"]), "bytes": total, "archive_bytes": result.archive.stat().st_size,
        "seconds": round(result.seconds, 1)}, indent=1))
    return 0
