"""Retriever recipes: the query adapter of the embedder, the cross-encoder reranker, jieba user dictionaries."""
