"""The transformers backend: a Hugging Face causal LM on this machine (:class:`LocalHFGenerator`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from linqrag.generation.config import (
    DEFAULT_CONFIG,
    SMOLLM2_HOW_TO_GET,
    GenerationConfig,
    GenerationError,
    GeneratorUnavailable,
    Message,
)
from linqrag.generation.models import resolve_local_model
from linqrag.generation.sampling import prompt_rng, sample_token
from linqrag.generation.text import check_messages, cut_at_stop, cut_stream_at_stop, fit_to_window

#: Forces the transformers generator's dtype (``fp32``, ``bf16``, ``fp16``); default: :func:`default_dtype`.
DTYPE_ENV = "LINQRAG_GENERATOR_DTYPE"
DTYPES = ("fp32", "bf16", "fp16")


def default_dtype(device_type: str) -> str:
    """bf16 on CUDA and on CPUs with native bf16 matrix products (AMX, AVX-512 BF16), fp32 elsewhere.

    On one AMX core SmolLM2's own decode loop wrote 43.9-48.9 queries a minute in bf16 against 21.1
    in fp32 (bench/RESULTS.md, "Generation in bf16"); where bf16 is emulated it would be slower.
    """
    import os

    from linqrag.hardware import cpu_has_native_bf16

    forced = os.environ.get(DTYPE_ENV, "").strip().lower()
    if forced:
        if forced not in DTYPES:
            raise ValueError(f"${DTYPE_ENV} must be one of {DTYPES}, got {forced!r}")
        return forced
    return "bf16" if device_type == "cuda" or cpu_has_native_bf16() else "fp32"


def _cache_keyword(model) -> str:
    """The forward keyword of the KV cache: ``cache`` in newer transformers, ``past_key_values`` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _cache_of(output):
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


class _Cancel:
    """A transformers stopping criterion that ends generation when the consumer stops listening."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class LocalHFGenerator:
    """A chat causal LM run by transformers on this machine.

    Prompts go through the tokenizer's chat template. Batches are left-padded so every row ends at
    the generation point; one lock serialises calls, because the app may call from several threads
    and one model instance must not run two generations at once.

    ``generate_batch`` decodes with our own loop (``decoder="linqrag"``): one forward per step over
    the rows still running (a finished row leaves the batch and its KV cache), the logits of the
    last position only, and :mod:`linqrag.generation.sampling`'s sampler seeded per prompt, so an
    answer does not depend on its batch. ``decoder="transformers"`` keeps ``model.generate`` (the
    path before, for batches and streams).
    """

    def __init__(
        self,
        model: str = "smollm2",
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 32,
        decoder: str = "linqrag",
    ) -> None:
        from linqrag.settings import apply_offline_env

        apply_offline_env()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path, display = resolve_local_model(model)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if decoder not in ("linqrag", "transformers"):
            raise ValueError(f"decoder must be 'linqrag' or 'transformers', got {decoder!r}")
        self.dtype = dtype or default_dtype(self.device.type)
        torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[self.dtype]
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(self.device).eval()
        except OSError as error:
            raise GeneratorUnavailable(
                f"generator model {model!r} is not on this machine ({error.__class__.__name__}). "
                f"Download it while online (`huggingface-cli download {model}`) and run with LINQRAG_ONLINE=1, "
                f"pass a local model directory, or use the packaged default 'smollm2'. {SMOLLM2_HOW_TO_GET}"
            ) from error
        self.name = f"local:{display}"
        self.backend = "transformers"
        self.decoder = decoder
        self._cache_keyword = _cache_keyword(self.model)
        self.batch_size = batch_size
        self.tokenizer.padding_side = "left"
        self.pad_id = next(
            i for i in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0) if i is not None
        )
        self.window = int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalHFGenerator({self.name}, device={self.device}, dtype={self.dtype}, decoder={self.decoder})"

    # ---- prompt -> ids ---------------------------------------------------------------------
    def prompt_text(self, messages: Sequence[Message]) -> str:
        """The exact text the model is conditioned on (chat template with the assistant turn opened)."""
        messages = check_messages(messages)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n".join(lines) + "\nAssistant:"

    def prompt_ids(self, messages: Sequence[Message], max_new_tokens: int) -> list[int]:
        """Token ids of the prompt, cut from the left when prompt plus answer would overflow the window."""
        ids = self.tokenizer(self.prompt_text(messages), add_special_tokens=False)["input_ids"]
        return fit_to_window(ids, self.window, max_new_tokens)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _inputs(self, rows: Sequence[list[int]]) -> dict:
        import torch

        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, ids in enumerate(rows):
            input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            mask[i, width - len(ids):] = 1
        return {"input_ids": input_ids.to(self.device), "attention_mask": mask.to(self.device)}

    def _decoding_kwargs(self, config: GenerationConfig) -> dict:
        kwargs: dict = {
            "max_new_tokens": config.max_new_tokens,
            "pad_token_id": self.pad_id,
            "repetition_penalty": config.repetition_penalty,
        }
        if config.stop:
            kwargs.update(stop_strings=list(config.stop), tokenizer=self.tokenizer)
        if config.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p, top_k=None)
        return kwargs

    def _seed(self, config: GenerationConfig) -> None:
        if config.seed is not None and not config.greedy:
            import torch

            torch.manual_seed(config.seed)

    # ---- generation --------------------------------------------------------------------------
    def generate(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> str:
        return self.generate_batch([messages], config)[0]

    def generate_batch(
        self, batch: Sequence[Sequence[Message]], config: GenerationConfig | None = None, show_progress: bool = False
    ) -> list[str]:
        """One answer per conversation, ``batch_size`` conversations per forward pass."""
        import torch
        from tqdm.auto import tqdm

        config = config or DEFAULT_CONFIG
        prompts = [self.prompt_ids(m, config.max_new_tokens) for m in batch]
        # Similar lengths together waste less padding; answers are put back in input order.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        answers: list[str] = [""] * len(prompts)
        with tqdm(total=len(prompts), desc=f"generate[{self.name}]", unit="prompt", disable=not show_progress) as bar:
            for start in range(0, len(order), self.batch_size):
                rows = order[start:start + self.batch_size]
                with self._lock, torch.inference_mode():
                    if self.decoder == "linqrag":
                        new_ids = self._decode([prompts[i] for i in rows], config)
                    else:
                        inputs = self._inputs([prompts[i] for i in rows])
                        self._seed(config)
                        out = self.model.generate(**inputs, **self._decoding_kwargs(config))
                        new_ids = [out[row, inputs["input_ids"].shape[1]:].tolist() for row in range(len(rows))]
                for row, i in enumerate(rows):
                    answers[i] = cut_at_stop(self.tokenizer.decode(new_ids[row], skip_special_tokens=True), config.stop)
                bar.update(len(rows))
        return answers

    def _eos_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
        return {i for i in ids if i is not None}

    def _decode(self, rows: list[list[int]], config: GenerationConfig) -> list[list[int]]:
        """Each row's new token ids, up to EOS, a stop string or ``max_new_tokens``."""
        new: list[list[int]] = [[] for _ in rows]
        for step in self._decode_steps(rows, config):
            for i, token in step:
                new[i].append(token)
        return new

    def _decode_steps(self, rows: list[list[int]], config: GenerationConfig) -> Iterator[list[tuple[int, int]]]:
        """One list of ``(row, token)`` per decoding step, for the rows that were still running (EOS left out).

        A generator, so ``stream`` shows tokens as they come with the same numerics as
        ``generate_batch`` (greedy answers are equal whether streamed or not).
        """
        import torch

        inputs = self._inputs(rows)
        mask = inputs["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: each row counts from its first token
        rngs = [prompt_rng(config.seed, r) for r in rows]
        eos = self._eos_ids()
        new: list[list[int]] = [[] for _ in rows]
        active = list(range(len(rows)))  # rows still running, in the order of the batch's tensors
        out = self.model(input_ids=inputs["input_ids"], attention_mask=mask, position_ids=positions,
                         use_cache=True, logits_to_keep=1)
        cache, last = _cache_of(out), positions[:, -1:]
        for _ in range(config.max_new_tokens):
            logits = out.logits[:, -1, :].float().cpu().numpy()
            tokens, keep = [], []
            for j, i in enumerate(active):
                previous = rows[i] + new[i] if config.repetition_penalty != 1.0 else ()
                token = sample_token(logits[j], config, rngs[i], previous)
                new[i].append(token)
                if token in eos or self._stopped(new[i], config.stop):
                    continue
                tokens.append(token)
                keep.append(j)
            yield [(i, new[i][-1]) for i in active if new[i][-1] not in eos]
            if not keep:
                return
            if len(keep) < len(active):
                index = torch.tensor(keep, device=mask.device)
                cache.batch_select_indices(index)
                mask, last = mask[index], last[index]
                active = [active[j] for j in keep]
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            last = last + 1
            out = self.model(input_ids=torch.tensor(tokens, device=mask.device)[:, None], attention_mask=mask,
                             position_ids=last, use_cache=True, **{self._cache_keyword: cache})

    def _stopped(self, ids: list[int], stop: tuple[str, ...]) -> bool:
        if not stop:
            return False
        text = self.tokenizer.decode(ids[-16:], skip_special_tokens=True)
        return any(s in text for s in stop)

    def stream(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> Iterator[str]:
        """Text pieces as they are decoded; stopping the iteration early stops the model too."""
        if self.decoder == "linqrag":
            config = config or DEFAULT_CONFIG
            yield from cut_stream_at_stop(self._stream_own(messages, config), config.stop)
            return
        yield from self._stream_transformers(messages, config)

    def _stream_own(self, messages: Sequence[Message], config: GenerationConfig) -> Iterator[str]:
        """Text of our decode loop as it grows; a piece ending in a partial character waits for the rest."""
        import torch

        prompt = self.prompt_ids(messages, config.max_new_tokens)
        ids: list[int] = []
        shown = 0
        with self._lock, torch.inference_mode():
            steps = self._decode_steps([prompt], config)
            while True:
                try:
                    step = next(steps)
                except StopIteration:
                    break
                except Exception as error:
                    raise GenerationError(f"{self.name}: generation failed: {error}") from error
                ids.extend(t for _, t in step)
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                if len(text) > shown and not text.endswith("\ufffd"):
                    yield text[shown:]
                    shown = len(text)
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        if len(text) > shown:
            yield text[shown:]

    def _stream_transformers(self, messages: Sequence[Message], config: GenerationConfig | None) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        config = config or DEFAULT_CONFIG
        inputs = self._inputs([self.prompt_ids(messages, config.max_new_tokens)])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = _Cancel()
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with self._lock, torch.inference_mode():
                    self._seed(config)
                    self.model.generate(
                        **inputs, **self._decoding_kwargs(config), streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([cancel]),
                    )
            except BaseException as error:  # noqa: BLE001 (re-raised in the consumer)
                failure.append(error)
                streamer.end()

        thread = threading.Thread(target=work, name="linqrag-generate", daemon=True)
        thread.start()
        try:
            for piece in cut_stream_at_stop(iter(streamer), config.stop):
                if piece:
                    yield piece
        finally:
            cancel.event.set()
            thread.join()
        if failure:
            raise GenerationError(f"{self.name}: generation failed: {failure[0]}") from failure[0]
