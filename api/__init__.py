"""The composition root: the RAG pipeline, generation backends, the REST API, the CLI and the edge runner."""
