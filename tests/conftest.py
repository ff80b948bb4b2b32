"""Shared fixtures: real models only (packaged MiniLM and SmolLM2, tiny random Mistrals built here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from linqrag.settings import apply_offline_env, data_dir

apply_offline_env()

TOKENIZER_TEXT = (
    "the quick brown fox jumps over the lazy dog . what is retrieval ? dense retrieval embeds "
    "queries and passages ; bm25 counts words . paris is the capital of france . plants turn "
    "light into energy by photosynthesis . instruct : given a question , retrieve passages that "
    "answer the question \n query : a b c d e f g h i j k l m n o p q r s t u v w x y z"
)


def build_tokenizer(add_eos: bool):
    """A small word-level tokenizer shaped like Mistral's: ``<s>`` first, EOS only if asked."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for word in dict.fromkeys(TOKENIZER_TEXT.split()):
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    single = "<s> $A </s>" if add_eos else "<s> $A"
    tok.post_processor = processors.TemplateProcessing(single=single, special_tokens=[("<s>", 1), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def build_tiny_mistral(directory: Path, add_eos: bool = False, seed: int = 0) -> Path:
    """Save a 2-layer random MistralModel with its tokenizer, loadable by ``load_embedder``."""
    import torch
    from transformers import MistralConfig, MistralModel

    tokenizer = build_tokenizer(add_eos)
    config = MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=None,
    )
    torch.manual_seed(seed)
    model = MistralModel(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_mistral_dir(tmp_path_factory) -> Path:
    return build_tiny_mistral(tmp_path_factory.mktemp("tiny-mistral"))


@pytest.fixture(scope="session")
def tiny_mistral_eos_dir(tmp_path_factory) -> Path:
    """The same shape, but a tokenizer that already appends EOS itself."""
    return build_tiny_mistral(tmp_path_factory.mktemp("tiny-mistral-eos"), add_eos=True)


@pytest.fixture(scope="session")
def minilm():
    from embedder import load_embedder

    return load_embedder("minilm")


@pytest.fixture(scope="session")
def smollm2():
    from embedder import load_embedder

    return load_embedder("smollm2", max_length=256)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real evaluation data beside the checkout; tests that need it skip when it is absent."""
    path = data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set LINQRAG_DATA to its folder)")
    return path


def pytest_report_header(config):
    return f"linqrag data dir: {data_dir()} ({'present' if data_dir().is_dir() else 'absent'}); HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE')}"
