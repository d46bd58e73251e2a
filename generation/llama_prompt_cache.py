"""llama.cpp prompt states kept in RAM, within a limit that counts every byte they hold.

llama-cpp-python's `LlamaRAMCache` saves, after each reply, the context's K/V state *and a copy of the logits of
every token in the context*, but its size limit counts only the K/V. With Qwen's 152k-token vocabulary the logits
are ~0.6 MB a token: one 770-token legal prompt with its answer is ~13 MB of K/V and ~620 MB of logits, so a
"256 MiB" cache could hold ~20 such states, ~12 GB (measured: +47 MB of RSS per 78-token prompt under the 0.5B; a
RAGAS judge server with the stock cache grew to 21 GB and was killed).

Only the last position's logits are ever read back: a prompt that starts like a cached one resumes from its state,
and llama-cpp-python always evaluates at least the prompt's last token again, which rewrites them. So each saved
state keeps one row of logits, and the limit counts K/V, logits and token ids together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def state_bytes(state: Any) -> int:
    """What one saved state holds in RAM: K/V (`llama_state_size`), logits and token ids."""
    return int(state.llama_state_size) + int(state.scores.nbytes) + int(state.input_ids.nbytes)


def prompt_cache(capacity_bytes: int) -> Any:
    """A `LlamaRAMCache` that keeps one row of logits per state and evicts by `state_bytes` (llama_cpp imported
    here, not at module import)."""
    from llama_cpp import LlamaRAMCache

    class PromptStateCache(LlamaRAMCache):
        @property
        def cache_size(self) -> int:
            return sum(state_bytes(state) for state in self.cache_state.values())

        def __setitem__(self, key: Sequence[int], value: Any) -> None:
            if value.scores.shape[0] > 1:
                # load_state writes these into the first n_tokens rows (broadcast), which the next eval overwrites
                value.scores = value.scores[-1:].copy()
            super().__setitem__(key, value)

    return PromptStateCache(capacity_bytes=capacity_bytes)
