"""Batched decoding in llama.cpp: several prompts decoded together in one context, one token each per step.

Where a decode step is bound by reading the weights (bigger models, more threads), decoding 8
sequences in one ``llama_decode`` call costs far less than 8 calls; for SmolLM2 on one thread of
the 2-core CI machine it did not pay (bench/RESULTS.md, "Batched decoding"), so the generator's
``parallel`` defaults to 1. The prompts of a group share
their common prefix (the stage's system and few-shot turns): it is evaluated once in sequence 0
and copied to the others in the KV cache (``llama_memory_seq_cp``), then each prompt's own suffix
is evaluated in its sequence. Sampling is :mod:`linqrag.generation.sampling`'s (numpy, a
generator seeded by ``config.seed`` and the prompt's own tokens), so an answer does not depend on
which prompts shared its group, and a cache of answers stays valid.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence

import numpy as np

from linqrag.generation.config import GenerationConfig
from linqrag.generation.sampling import prompt_rng, sample_token


def common_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """Tokens every prompt starts with, leaving each at least one token of its own (its logits)."""
    n = min(len(p) for p in prompts) - 1
    first = prompts[0]
    for k in range(max(n, 0)):
        if any(p[k] != first[k] for p in prompts[1:]):
            return k
    return max(n, 0)


class BatchDecoder:
    """One llama.cpp context of ``n_seq`` sequences over a loaded ``llama_cpp.Llama``'s model."""

    def __init__(self, llm, n_seq: int, n_ctx: int, n_threads: int = 1, n_batch: int = 512) -> None:
        import llama_cpp

        self._lib = llama_cpp
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.kv_unified = True  # the copied prefix is stored once for all sequences
        self.ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a batched context")
        self.n_seq, self.n_ctx, self.n_batch = n_seq, llama_cpp.llama_n_ctx(self.ctx), n_batch
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(llm._model.vocab)
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, n_seq)
        self.memory = llama_cpp.llama_get_memory(self.ctx)

    def close(self) -> None:
        if self.ctx:
            self._lib.llama_batch_free(self.batch)
            self._lib.llama_free(self.ctx)
            self.ctx = None

    def _decode(self, entries: Sequence[tuple[int, int, int, bool]]) -> dict[int, np.ndarray]:
        """Evaluate ``(token, position, sequence, wants_logits)`` entries in calls of at most ``n_batch``;
        the logits of each entry that wants them, by sequence."""
        out: dict[int, np.ndarray] = {}
        for start in range(0, len(entries), self.n_batch):
            part = entries[start:start + self.n_batch]
            batch = self.batch
            for i, (token, pos, seq, wants) in enumerate(part):
                batch.token[i] = token
                batch.pos[i] = pos
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = seq
                batch.logits[i] = wants
            batch.n_tokens = len(part)
            status = self._lib.llama_decode(self.ctx, batch)
            if status != 0:
                raise RuntimeError(f"llama_decode failed ({status}): the group does not fit n_ctx={self.n_ctx}")
            for i, (_token, _pos, seq, wants) in enumerate(part):
                if wants:
                    pointer = self._lib.llama_get_logits_ith(self.ctx, i)
                    out[seq] = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)),
                                                     shape=(self.n_vocab,)).copy()
        return out

    def generate(self, prompts: Sequence[Sequence[int]], config: GenerationConfig, is_eog: Callable[[int], bool],
                 finished: Callable[[list[int]], bool]) -> list[list[int]]:
        """New tokens of each prompt (at most ``n_seq`` prompts), each until an end-of-generation token,
        ``max_new_tokens``, or ``finished(tokens)`` (a stop string seen)."""
        if not prompts:
            return []
        if len(prompts) > self.n_seq:
            raise ValueError(f"{len(prompts)} prompts for a context of {self.n_seq} sequences")
        shared = common_prefix(prompts)
        need = shared + sum(len(p) - shared + config.max_new_tokens for p in prompts)
        if need > self.n_ctx:
            raise ValueError(f"the group needs {need} cache cells, the context has {self.n_ctx}")
        self._lib.llama_memory_clear(self.memory, True)
        if shared:
            self._decode([(t, i, 0, False) for i, t in enumerate(prompts[0][:shared])])
            for seq in range(1, len(prompts)):
                self._lib.llama_memory_seq_cp(self.memory, 0, seq, -1, -1)
        logits = self._decode([(t, shared + j, seq, j == len(p) - shared - 1)
                               for seq, p in enumerate(prompts) for j, t in enumerate(p[shared:])])
        rngs = [prompt_rng(config.seed, p) for p in prompts]
        answers: list[list[int]] = [[] for _ in prompts]
        active = list(range(len(prompts)))
        while active:
            step = []
            for seq in active:
                token = sample_token(logits[seq], config, rngs[seq], answers[seq])
                if is_eog(token):
                    continue
                answers[seq].append(token)
                if len(answers[seq]) >= config.max_new_tokens or finished(answers[seq]):
                    continue
                step.append((token, len(prompts[seq]) + len(answers[seq]) - 1, seq, True))
            active = [seq for _t, _p, seq, _w in step]
            if step:
                logits = self._decode(step)
        return answers
