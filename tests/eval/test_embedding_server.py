"""The embedder behind /v1/embeddings: the OpenAI client gets the embedder's own vectors; bad input is a 4xx."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import numpy as np

from eval.embedding_server import EmbeddingServer


class CharCodeEmbedder:
    """A protocol embedder: 8 dims from the characters' code points, L2-normalised (no model needed)."""

    name, dim = "char-codes", 8

    def embed(self, texts: Sequence[str], role: str = "document") -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for i, char in enumerate(text):
                out[row, (ord(char) + i) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def test_the_openai_client_gets_the_embedders_vectors() -> None:
    from openai import OpenAI

    embedder = CharCodeEmbedder()
    with EmbeddingServer(embedder) as server:
        client = OpenAI(base_url=server.base_url, api_key="none")
        got = client.embeddings.create(model="dossier-embedder", input=["盗窃罪", "抢劫罪"], encoding_format="float")
        expected = embedder.embed(["盗窃罪", "抢劫罪"], role="query")
        np.testing.assert_allclose([d.embedding for d in got.data], expected, rtol=1e-6)
        assert httpx.get(f"{server.base_url}/models").json()["data"][0]["id"] == "dossier-embedder"
        bad = httpx.post(f"{server.base_url}/embeddings", json={"input": [[1, 2, 3]]})
        assert bad.status_code == 400 and "token ids" in bad.json()["error"]["message"]
        assert httpx.post(f"{server.base_url}/chat/completions", json={}).status_code == 404
