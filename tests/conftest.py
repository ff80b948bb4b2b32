"""Shared fixtures: real models only (packaged MiniLM and SmolLM2, tiny random Mistrals built here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from embedder.random_models import build_random_mistral
from linqrag.settings import apply_offline_env, data_dir

apply_offline_env()

@pytest.fixture(scope="session")
def tiny_mistral_dir(tmp_path_factory) -> Path:
    return build_random_mistral(tmp_path_factory.mktemp("tiny-mistral"))


@pytest.fixture(scope="session")
def tiny_mistral_eos_dir(tmp_path_factory) -> Path:
    """The same shape, but a tokenizer that already appends EOS itself."""
    return build_random_mistral(tmp_path_factory.mktemp("tiny-mistral-eos"), add_eos=True)


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
