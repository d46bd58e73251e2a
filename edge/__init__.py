"""The edge face: a domain exported as one offline folder (`dossier export edge`) and the runner that answers from
it with no torch and no network (`python -m edge ask|serve|verify BUNDLE`).

The runner is the product itself, not a copy of its logic: `RagPipeline`, `HybridRetriever`, the prompting, citation
and support checks and `LlamaCppGenerator` are the same modules, copied byte for byte into the bundle's `runner/`
(with these files) because none of them imports torch at module level. What the edge adds is the query embedder
over the ONNX int8 graph (`query_embedder.py`) and the bundle's layout, manifest and opening.

Module map:
  layout.py          the bundle's file names
  errors.py          BundleError (a bundle that is missing or changed), ExportError (bad export input)
  manifest.py        manifest.json: versions, sources and the sha256 + size of every file; verify_bundle
  query_embedder.py  EdgeQueryEmbedder: tokenizers + onnxruntime + the query adapter in numpy
  runtime.py         open_bundle -> RagPipeline over the bundle's files
  server.py          FastAPI: /v1/ask, /v1/chat/completions (OpenAI-compatible, with citations), /v1/models
  cli.py             python -m edge ask | serve | verify
  export/            building a bundle (project side: torch for the ONNX export, llama.cpp's quantiser)
"""
