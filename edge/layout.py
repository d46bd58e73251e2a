"""Where each part lives inside an edge bundle (paths relative to the bundle folder, posix)."""

from __future__ import annotations

MANIFEST = "manifest.json"
GENERATOR = "model/generator.gguf"  # the chat template stays inside the GGUF
EMBEDDER_DIR = "embedder"
EMBEDDER_GRAPH = "model.int8.onnx"  # (input_ids, attention_mask) -> sentence_embedding
EMBEDDER_TOKENIZER = "tokenizer.json"  # the `tokenizers` file of the model's fast tokenizer
EMBEDDER_CONFIG = "embedder.json"  # name, dim, max length, prompts, padding, the query route's steps
QUERY_ROUTE = "query_route.npz"  # the query adapter's weights (Dense steps), when the model has one
# the embedder graphs an export can write (`--embedder-int8`, edge.export.embedder.GRAPHS); "weights" quantises the
# stored weights only and computes in fp32, the others quantise activations too
EMBEDDER_GRAPHS = ("matmul", "all", "all-fp16", "weights")
WEIGHTS_ONLY = "weights"
INDEX_DIR = "index"  # one index version as retrieval/store.py writes it (its own manifest.json inside)
DOMAIN_DIR = "domain"
DOMAIN_CONFIG = "domain.json"  # the DomainConfig (prompts, threshold, disclaimer, retrieval weights) as JSON
RUNNER_DIR = "runner"  # the edge package and the product modules it runs, importable with PYTHONPATH=runner
REQUIREMENTS = "requirements.txt"
MODELFILE = "Modelfile"
README = "README.md"
