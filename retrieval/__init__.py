"""Embedders, the FAISS index, BM25 for Chinese, fusion, reranking and the on-disk index store.

Module map (one concept each; `rag.build_retrieval` is where domain config becomes these classes):
  embedders.py         SentenceTransformerEmbedder (torch fp32/bf16 or ONNX Runtime, Matryoshka truncation)
  onnx_embedding.py    torch.onnx export of a sentence-transformers model + onnxruntime inference
  faiss_index.py       FaissIndex (flat / HNSW / IVF-PQ inside IndexIDMap2), chunk_key(chunk_id) -> int64
  zh_tokenizer.py      JiebaTokenizer: jieba search-mode words + domain user dict + character bigrams
  bm25.py              Bm25Retriever over bm25s, documents by position
  fusion.py            reciprocal_rank_fusion (weighted RRF, k=60)
  reranker.py          CrossEncoderReranker
  filters.py           MetadataFilter (equality, one-of lists), parse_filter_args for key=value
  docstore.py          SqliteDocstore: chunks, FAISS keys, BM25 positions, hashes and tokens of one version
  manifest.py          IndexManifest, sha256 checksums
  store.py             IndexStore: atomic, versioned, checksummed versions with a `current` pointer
  vector_cache.py      document vectors by content (embedder identity, text): reused by every build
  vector_pack.py       shipped int8 vector packs: checksum + re-embedded sample verified on use
  document_vectors.py  cache -> pack -> embedder, in committed slices (a killed build resumes)
  build_progress.py    how far a running build is, for /readyz
  index_build.py       IndexBuilder: full build and incremental update from the ingest ChunkStore
  index_files.py       open_index: one verified version (FAISS + BM25 + docstore)
  hybrid.py            HybridRetriever: dense + BM25 -> RRF -> rerank, with per-stage scores and timings
  langchain_adapter.py LangchainRetriever (langchain_core BaseRetriever)
"""
