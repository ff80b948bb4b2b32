"""The exported CPU backends: the same vectors as torch (fp32 in ONNX Runtime, bf16 in OpenVINO) or
close to them (int8), exported once and reused, told apart by the signature, and a clear fallback
where a runtime is absent. Real components: the packaged MiniLM exported by torch, run by ONNX
Runtime and OpenVINO, a real index on disk."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import TOPICS

TEXTS = [
    "BM25 ranks documents by term frequency and rarity.",
    "The walrus operator := assigns inside an expression (PEP 572).",
    "x",
    "A much longer passage " + "about retrieval, chunking and embedding models on a CPU " * 30,
    "Ünïcödé text, 数字 and emoji 🙂 still tokenise.",
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def backends(onnx_cache):
    """MiniLM on every backend, the exported ones in a cache of this module's own."""
    from embedder import load_embedder

    mp = pytest.MonkeyPatch()
    mp.setenv("LINQRAG_CACHE", str(onnx_cache))
    try:
        yield {name: load_embedder("minilm", backend=name) for name in ("torch", "onnx", "onnx-int8", "openvino-bf16")}
    finally:
        mp.undo()


def test_onnx_fp32_gives_torchs_vectors_and_int8_stays_close(backends):
    torch_vectors = backends["torch"].encode_documents(TEXTS)
    fp32 = backends["onnx"].encode_documents(TEXTS)
    int8 = backends["onnx-int8"].encode_documents(TEXTS)
    assert fp32.shape == int8.shape == torch_vectors.shape and fp32.dtype == np.float32
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-4)
    assert (fp32 * torch_vectors).sum(axis=1).min() >= 0.9999  # every text, long ones included
    assert (int8 * torch_vectors).sum(axis=1).min() >= 0.97
    bf16 = backends["openvino-bf16"].encode_documents(TEXTS)  # fp32 where the CPU has no bf16: closer still
    assert bf16.dtype == np.float32 and (bf16 * torch_vectors).sum(axis=1).min() >= 0.9999
    queries = backends["onnx-int8"].encode_queries(["what ranks documents by rarity?"])
    assert int(np.argmax(queries @ int8.T)) == 0  # the int8 vectors still find the right text


def test_an_export_is_made_once_and_reused(backends, onnx_cache, monkeypatch):
    from embedder import load_embedder
    from embedder.onnx import EXPORTS

    monkeypatch.setenv("LINQRAG_CACHE", str(onnx_cache))
    files = sorted(onnx_cache.rglob("*.onnx"))
    assert {f.name.split("-ort")[0] for f in files} == {"model.onnx", "model-int8"}
    stamps = {f: f.stat().st_mtime_ns for f in files}
    before = dict(EXPORTS)
    again = load_embedder("minilm", backend="onnx-int8")
    openvino = load_embedder("minilm", backend="openvino-bf16")
    assert EXPORTS == before  # neither exported nor quantised again
    assert openvino.model_path == backends["onnx"].model_path  # OpenVINO runs the fp32 export
    assert {f: f.stat().st_mtime_ns for f in onnx_cache.rglob("*.onnx")} == stamps
    assert again.model_path == backends["onnx-int8"].model_path
    assert not list(onnx_cache.rglob("*.tmp*"))  # no half-written file left behind


def test_two_models_with_one_signature_get_their_own_exports(backends, onnx_cache, tmp_path, monkeypatch):
    """A local directory's signature knows its config and weight-file sizes only: two fine-tunes of one
    base, saved under the same folder name, share it. Each must still run its own weights."""
    import torch

    from embedder import load_embedder

    monkeypatch.setenv("LINQRAG_CACHE", str(onnx_cache))
    base = backends["torch"]
    for name, scale in (("a", 1.0), ("b", 0.5)):
        with torch.no_grad():
            model = type(base.model).from_pretrained(base.model.name_or_path)
            model.encoder.layer[0].output.dense.weight.mul_(scale)
        model.save_pretrained(tmp_path / name / "model")
        base.tokenizer.save_pretrained(tmp_path / name / "model")
    loaded = {name: {backend: load_embedder(str(tmp_path / name / "model"), backend=backend)
                     for backend in ("torch", "onnx")} for name in ("a", "b")}
    assert loaded["a"]["onnx"].signature == loaded["b"]["onnx"].signature  # the weakness this guards
    assert loaded["a"]["onnx"].model_path != loaded["b"]["onnx"].model_path
    for name in ("a", "b"):
        exact = loaded[name]["torch"].encode_documents(TEXTS)
        assert (loaded[name]["onnx"].encode_documents(TEXTS) * exact).sum(axis=1).min() >= 0.9999


def test_the_signature_tells_backends_apart_and_an_index_refuses_another(backends, tmp_path, capsys):
    from embedder.loading import predict_signature
    from indexing import IndexMismatchError, build_index, open_index
    from indexing.cli import main

    signatures = {name: emb.signature for name, emb in backends.items()}
    assert len(set(signatures.values())) == 4
    assert signatures["onnx-int8"].endswith("|backend=onnx-int8") and "backend=" not in signatures["torch"]
    assert {name: predict_signature("minilm", backend=name) for name in signatures} == signatures

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in TOPICS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    build_index(corpus, backends["onnx-int8"], tmp_path / "index", show_progress=False)
    index = open_index(tmp_path / "index")
    assert index.manifest.backend == "onnx-int8"
    with pytest.raises(IndexMismatchError, match="backend=onnx-int8"):
        index.check_signature(backends["torch"].signature)
    assert index.manifest.load_embedder().signature == signatures["onnx-int8"]  # queries run as it was built
    # the CLI: the index's own backend by default; another one is refused before any model loads
    assert main(["search", "chess openings", "--index-dir", str(tmp_path / "index"), "--retriever", "dense",
                 "--json"]) == 0
    capsys.readouterr()
    assert main(["search", "chess", "--index-dir", str(tmp_path / "index"), "--embedder", "minilm",
                 "--backend", "torch"]) == 2
    assert "built with embedder" in capsys.readouterr().err


def test_an_older_manifest_without_a_backend_reads_as_torch(tmp_path):
    import json

    from indexing.manifest import Manifest

    record = {"corpus": "c", "corpus_path": "/c", "signature": "s", "embedder": "minilm", "chunk_config": {}}
    (tmp_path / "manifest.json").write_text(json.dumps(record), encoding="utf-8")
    assert Manifest.load(tmp_path / "manifest.json").backend == "torch"


def test_without_either_runtime_auto_falls_back_to_torch_and_says_why(monkeypatch, caplog):
    from embedder import load_embedder
    from embedder.onnx import BackendUnavailableError

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if neither were installed
    monkeypatch.setitem(sys.modules, "openvino", None)
    with caplog.at_level("WARNING", logger="embedder.onnx"):
        emb = load_embedder("minilm")
    assert emb.backend == "torch" and "backend=" not in emb.signature
    assert "ONNX Runtime is not installed" in caplog.text and "pip install onnxruntime" in caplog.text
    with pytest.raises(BackendUnavailableError, match="ONNX Runtime is not installed"):
        load_embedder("minilm", backend="onnx-int8")
    with pytest.raises(BackendUnavailableError, match="OpenVINO is not installed"):
        load_embedder("minilm", backend="openvino-bf16")


@pytest.mark.parametrize(("amx", "openvino", "onnxruntime", "expected"), [
    (True, True, True, "openvino-bf16"),
    (True, False, True, "onnx-int8"),
    (False, True, True, "onnx-int8"),
    (True, True, False, "openvino-bf16"),
    (False, True, False, "torch"),
])
def test_auto_takes_openvino_only_where_the_cpu_has_amx(monkeypatch, amx, openvino, onnxruntime, expected):
    import torch

    from embedder import EmbedderSpec
    from embedder import openvino as ov_module
    from embedder.onnx import resolve_backend

    flags = frozenset({"avx512f", "avx512_bf16"} | ({"amx_bf16", "amx_tile"} if amx else set()))
    monkeypatch.setattr(ov_module, "cpu_flags", lambda: flags)
    for name, present in (("openvino", openvino), ("onnxruntime", onnxruntime)):
        if not present:
            monkeypatch.setitem(sys.modules, name, None)
    encoder = EmbedderSpec(name="enc", source="enc", pooling="mean")
    assert resolve_backend("auto", encoder, torch.device("cpu"), nf4=False) == expected


def test_cpu_flags_are_read_from_linux():
    from pathlib import Path

    from embedder.openvino import cpu_flags

    if not Path("/proc/cpuinfo").exists():
        pytest.skip("no /proc/cpuinfo on this system")
    assert "fpu" in cpu_flags() or "sse2" in cpu_flags() or "fp" in cpu_flags()


def test_decoders_stay_on_torch_and_an_explicit_onnx_is_refused(tmp_path):
    from embedder import EmbedderSpec
    from embedder.onnx import BackendUnavailableError, resolve_backend
    from embedder.spec import decoder_spec

    cpu = __import__("torch").device("cpu")
    decoder = decoder_spec("tiny", "tiny")
    assert resolve_backend("auto", decoder, cpu, nf4=False) == "torch"
    with pytest.raises(BackendUnavailableError, match="decoders"):
        resolve_backend("onnx", decoder, cpu, nf4=False)
    encoder = EmbedderSpec(name="enc", source="enc", pooling="mean")
    assert resolve_backend("auto", encoder, cpu, nf4=False) in {"onnx-int8", "openvino-bf16"}
    assert resolve_backend("auto", encoder, __import__("torch").device("cuda"), nf4=False) == "torch"
    for backend in ("onnx", "openvino-bf16"):
        with pytest.raises(BackendUnavailableError, match="NF4"):
            resolve_backend(backend, encoder, cpu, nf4=True)
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        resolve_backend("tensorrt", encoder, cpu, nf4=False)
