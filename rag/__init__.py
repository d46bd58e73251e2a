"""The product: one question -> retrieve -> abstain? -> prompt -> generate -> cite & verify -> `Answer`.

`build_pipeline(cfg)` (build.py) is the composition root where a domain's config becomes classes; the faces (the
REST app in `api/`, the CLI in `cli/`) and evaluation call it. Training builds its RAG prompts with `prompting` and
checks citations with `citations`, the same code the service runs.
"""
