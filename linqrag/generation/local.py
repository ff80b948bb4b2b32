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
from linqrag.generation.text import check_messages, cut_at_stop, cut_stream_at_stop, fit_to_window


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
    """

    def __init__(
        self,
        model: str = "smollm2",
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 8,
    ) -> None:
        from linqrag.settings import apply_offline_env

        apply_offline_env()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path, display = resolve_local_model(model)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}.get(
            dtype or "", torch.bfloat16 if self.device.type == "cuda" else torch.float32
        )
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
        self.batch_size = batch_size
        self.tokenizer.padding_side = "left"
        self.pad_id = next(
            i for i in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0) if i is not None
        )
        self.window = int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalHFGenerator({self.name}, device={self.device})"

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
                inputs = self._inputs([prompts[i] for i in rows])
                with self._lock, torch.inference_mode():
                    self._seed(config)
                    out = self.model.generate(**inputs, **self._decoding_kwargs(config))
                width = inputs["input_ids"].shape[1]
                for row, i in enumerate(rows):
                    text = self.tokenizer.decode(out[row, width:], skip_special_tokens=True)
                    answers[i] = cut_at_stop(text, config.stop)
                bar.update(len(rows))
        return answers

    def stream(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> Iterator[str]:
        """Text pieces as they are decoded; stopping the iteration early stops the model too."""
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
