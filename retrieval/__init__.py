"""Embedders, the FAISS index, BM25 for Chinese, fusion, reranking and the on-disk index store."""
