"""``finetune.export``: an adapter merged into its base loads in sentence-transformers with the same vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from embedder import load_embedder
from finetune.cli import export_main as main
from finetune.export import export_adapter, query_prefix
from finetune.lora import add_lora, save_adapter

TEXTS = ["Honey bees live in colonies with one queen.", "Magma rises through cracks in the crust.", "word " * 300]


@pytest.fixture(scope="module")
def minilm_adapter(tmp_path_factory):
    """A MiniLM LoRA adapter with non-zero weights (a fresh one is the identity: LoRA B starts at zero)."""
    embedder = load_embedder("minilm")
    model = add_lora(embedder.model, 8, 16, 0.0, quantized=False, gradient_checkpointing=False)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    target = tmp_path_factory.mktemp("adapter") / "step-000010"
    save_adapter(model, target, {"base": "minilm", "pooling": "mean", "step": 10})
    return target


def test_exported_model_gives_the_adapted_vectors_in_sentence_transformers(minilm_adapter, tmp_path):
    from sentence_transformers import SentenceTransformer

    report = export_adapter(minilm_adapter, tmp_path / "merged")
    adapted = load_embedder("minilm", adapter=minilm_adapter, backend="torch")  # exact, to compare with
    expected = adapted.encode_documents(TEXTS)
    assert np.abs(expected - load_embedder("minilm").encode_documents(TEXTS)).max() > 1e-3  # the adapter matters
    model = SentenceTransformer(str(tmp_path / "merged"), device="cpu")
    np.testing.assert_allclose(model.encode(TEXTS, normalize_embeddings=False), expected, atol=1e-5)
    merged = load_embedder(str(tmp_path / "merged"), backend="torch")
    np.testing.assert_allclose(merged.encode_documents(TEXTS), expected, atol=1e-5)
    # the default CPU path exports the merged model to ONNX as it would any BERT-like checkpoint
    onnx = load_embedder(str(tmp_path / "merged"), backend="onnx").encode_documents(TEXTS)
    assert (onnx * expected).sum(axis=1).min() > 0.9999
    record = json.loads((tmp_path / "merged" / "linqrag_export.json").read_text())
    assert record["base"] == "minilm"
    assert record["base_model"] == report.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    for name in ("config.json", "linqrag_export.json", "config_sentence_transformers.json"):
        text = (tmp_path / "merged" / name).read_text()
        assert str(Path.home()) not in text and str(tmp_path) not in text  # the base by name, no local paths
    assert not any("adapter" in p.name for p in (tmp_path / "merged").iterdir())  # no PEFT at serving time


def test_export_cli_refuses_a_non_empty_out_and_a_missing_adapter(minilm_adapter, tmp_path, capsys):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    assert main(["--adapter", str(minilm_adapter), "--out", str(tmp_path / "busy")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["--adapter", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "not a PEFT adapter" in capsys.readouterr().err


def test_query_prefix_of_the_templates():
    assert query_prefix("Instruct: {instruction}\nQuery: {query}", "Find it") == ("Instruct: Find it\nQuery: ", None)
    prefix, why = query_prefix('This passage: "{query}" means in one word: "', "x")
    assert prefix is None and "suffix" in why
