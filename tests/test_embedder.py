"""Embedder behaviour on real models: pooling, padding, batching, 4-bit, LoRA, presets, formats."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedder import ModelNotFoundError, load_embedder
from embedder.batching import run_batches
from embedder.pooling import last_token_pool, mean_pool

TEXTS = [
    "what is retrieval ?",
    "paris is the capital of france . the quick brown fox jumps over the lazy dog . plants turn light into energy",
    "bm25 counts words",
    "dense retrieval embeds queries and passages ; bm25 counts words . a b c d e f g h i j k l m n o p",
    "plants",
]


# ---- pooling --------------------------------------------------------------------------------
def test_last_token_pool_finds_last_real_token_for_both_padding_sides():
    hidden = torch.randn(3, 5, 4)
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]])
    assert torch.equal(last_token_pool(hidden, right), hidden[[0, 1, 2], [2, 4, 0]])
    assert torch.equal(last_token_pool(hidden, left), hidden[:, -1])


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


@pytest.mark.parametrize("side", ["left", "right"])
def test_decoder_pooling_matches_unpadded_under_either_padding(tiny_mistral_dir, side):
    emb = load_embedder(str(tiny_mistral_dir))
    emb.spec = emb.spec.with_overrides(padding_side=side)
    batched = emb.encode_documents(TEXTS, batch_size=len(TEXTS))
    # The reference: each text alone through the raw model, last position, no padding at all.
    for text, vector in zip(TEXTS, batched, strict=False):
        ids = torch.tensor([emb.tokenize([text])[0]])
        with torch.inference_mode():
            hidden = emb.model(input_ids=ids).last_hidden_state[0, -1]
        reference = torch.nn.functional.normalize(hidden, dim=-1).numpy()
        assert np.abs(vector - reference).max() < 1e-4


# ---- batching ---------------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["left", "right"])
def test_embedding_independent_of_batch_composition(tiny_mistral_dir, side):
    emb = load_embedder(str(tiny_mistral_dir))
    emb.spec = emb.spec.with_overrides(padding_side=side)
    alone = np.stack([emb.encode_documents([t])[0] for t in TEXTS])
    for batch_size in (2, 3, len(TEXTS)):
        together = emb.encode_documents(TEXTS, batch_size=batch_size)
        assert np.abs(together - alone).max() < 1e-4
    shuffled = [TEXTS[i] for i in (3, 0, 4, 1, 2)]
    again = emb.encode_documents(shuffled, batch_size=4)
    assert np.abs(again - alone[[3, 0, 4, 1, 2]]).max() < 1e-4


def test_minilm_independent_of_batch_composition(minilm_torch, minilm):
    alone = np.stack([minilm_torch.encode_documents([t])[0] for t in TEXTS])
    assert np.abs(minilm_torch.encode_documents(TEXTS, batch_size=2) - alone).max() < 1e-4
    # int8: each ONNX Runtime call quantises its activations with one scale, so batch mates move a
    # vector about as much as quantising does (docs/embedders.md); it stays the same text's vector
    alone = np.stack([minilm.encode_documents([t])[0] for t in TEXTS])
    batched = minilm.encode_documents(TEXTS, batch_size=4)
    assert (batched * alone).sum(axis=1).min() > 0.975
    assert ((batched @ alone.T).argmax(axis=1) == np.arange(len(TEXTS))).all()


def test_outputs_are_float32_unit_vectors(minilm, tiny_mistral_dir):
    for emb in (minilm, load_embedder(str(tiny_mistral_dir))):
        vectors = emb.encode_queries(TEXTS[:3])
        assert vectors.dtype == np.float32 and vectors.shape == (3, emb.dim)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.encode_documents([]).shape == (0, minilm.dim)


def test_out_of_memory_halves_batch_and_keeps_every_row():
    seen: list[int] = []

    def forward(batch):
        seen.append(len(batch))
        if len(batch) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return np.asarray(batch, dtype=np.float32)[:, None]

    out = run_batches(list(range(10)), 8, forward)
    assert out[:, 0].tolist() == list(range(10))
    assert seen[:3] == [8, 4, 2] and max(seen[3:]) <= 2


def test_errors_other_than_out_of_memory_propagate():
    def forward(batch):
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        run_batches([1, 2], 2, forward)


# ---- 4-bit --------------------------------------------------------------------------------------
def test_nf4_on_cpu_stays_close_to_fp32(tiny_mistral_dir):
    fp32 = load_embedder(str(tiny_mistral_dir), quantization="none")
    nf4 = load_embedder(str(tiny_mistral_dir), quantization="nf4")
    import bitsandbytes as bnb

    assert any(isinstance(m, bnb.nn.Linear4bit) for m in nf4.model.modules())
    a, b = fp32.encode_queries(TEXTS), nf4.encode_queries(TEXTS)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() >= 0.98, cosines
    assert "dtype=nf4" in nf4.signature and nf4.signature != fp32.signature


# ---- formats --------------------------------------------------------------------------------------
def test_decoder_queries_carry_instruction_and_documents_do_not(tiny_mistral_dir):
    emb = load_embedder(str(tiny_mistral_dir))
    assert emb.format_queries(["what is bm25?"], "Given a claim, retrieve evidence") == [
        "Instruct: Given a claim, retrieve evidence\nQuery: what is bm25?"
    ]
    default = emb.format_queries(["q"])[0]
    assert default.startswith("Instruct: Given a question") and default.endswith("\nQuery: q")
    instructed = emb.encode_queries(["what is retrieval ?"])
    bare = emb.encode_documents(["what is retrieval ?"])
    assert np.abs(instructed - bare).max() > 1e-3


@pytest.mark.parametrize("fixture", ["tiny_mistral_dir", "tiny_mistral_eos_dir"])
def test_eos_appended_exactly_once(request, fixture):
    """Mistral's tokenizer may or may not add EOS itself; either way each input ends in one EOS."""
    emb = load_embedder(str(request.getfixturevalue(fixture)))
    eos = emb.tokenizer.eos_token_id
    for ids in emb.tokenize(emb.format_queries(TEXTS) + TEXTS):
        assert ids[-1] == eos and ids.count(eos) == 1
        assert ids[0] == emb.tokenizer.bos_token_id


def test_eos_survives_truncation(tiny_mistral_dir):
    emb = load_embedder(str(tiny_mistral_dir), max_length=8)
    ids = emb.tokenize([TEXTS[3]])[0]
    assert len(ids) == 8 and ids[-1] == emb.tokenizer.eos_token_id


def test_smollm2_pools_the_prompt_eol_position(smollm2):
    """Zero-shot SmolLM2 pools the state after PromptEOL's opening quote: no EOS may follow it."""
    for formatted in (smollm2.format_queries(["what is photosynthesis?"]), smollm2.format_documents(["Plants."])):
        ids = smollm2.tokenize(formatted)[0]
        assert smollm2.tokenizer.decode(ids).endswith('means in one word: "')
        assert smollm2.tokenizer.eos_token_id not in ids
    assert smollm2.format_documents(["Plants."]) == ['This passage: "Plants." means in one word: "']
    assert smollm2.spec.pooling == "last" and smollm2.spec.padding_side == "left"


def test_long_text_is_cut_inside_the_template_not_after_it(smollm2, monkeypatch):
    """A window shorter than the text must cut the passage, keeping PromptEOL's suffix (the pooled token)."""
    monkeypatch.setattr(smollm2, "max_length", 24)
    long_text = " ".join(["Photosynthesis turns light into chemical energy in plants."] * 20)
    for ids in (smollm2.document_ids([long_text])[0], smollm2.query_ids([long_text])[0]):
        assert len(ids) <= 24
        decoded = smollm2.tokenizer.decode(ids)
        assert decoded.endswith('means in one word: "') and "Photosynthesis" in decoded
    plain = smollm2.tokenize(smollm2.format_documents([long_text]))[0]
    assert not smollm2.tokenizer.decode(plain).endswith('means in one word: "')  # what the old cut did
    short = "Plants."
    assert smollm2.document_ids([short]) == smollm2.tokenize(smollm2.format_documents([short]))
    # the vector is that of the shortened passage, so cut and uncut encodings of a short text agree
    assert np.allclose(smollm2.encode_documents([short]), smollm2.encode(smollm2.format_documents([short])), atol=1e-6)


def test_template_longer_than_the_window_falls_back_to_plain_truncation(tiny_mistral_dir):
    emb = load_embedder(str(tiny_mistral_dir), max_length=6)
    ids = emb.query_ids(["a query that is long enough to overflow"], "a very long instruction " * 5)[0]
    assert len(ids) == 6 and ids[-1] == emb.tokenizer.eos_token_id


def test_minilm_has_no_instruction_and_no_extra_eos(minilm):
    assert minilm.format_queries(["q"]) == ["q"]
    ids = minilm.tokenize(["hello world"])[0]
    assert minilm.tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "hello", "world", "[SEP]"]


# ---- relevance on real models ----------------------------------------------------------------------
QUERIES = ["What is the capital of France?", "How do plants make energy from light?", "Who wrote Hamlet?"]
RELEVANT = [
    "Paris is the capital and most populous city of France.",
    "Photosynthesis is the process by which plants convert light energy into chemical energy.",
    "Hamlet is a tragedy written by William Shakespeare around 1600.",
]


def _assert_relevant_first(emb):
    scores = emb.encode_queries(QUERIES) @ emb.encode_documents(RELEVANT).T
    assert (scores.argmax(axis=1) == np.arange(len(QUERIES))).all(), scores


def test_minilm_ranks_relevant_passage_first(minilm):
    _assert_relevant_first(minilm)


def test_smollm2_ranks_relevant_passage_first(smollm2):
    _assert_relevant_first(smollm2)


def test_minilm_matches_sentence_transformers(minilm_torch):
    from sentence_transformers import SentenceTransformer

    from embedder.sources import minilm_dir

    st = SentenceTransformer(str(minilm_dir()), device="cpu")
    theirs = st.encode(TEXTS + QUERIES, normalize_embeddings=True, convert_to_numpy=True)
    assert np.abs(minilm_torch.encode_documents(TEXTS + QUERIES) - theirs).max() < 1e-4


# ---- LoRA ---------------------------------------------------------------------------------------------
def test_lora_adapter_saved_and_reloaded_gives_same_vectors(tiny_mistral_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    from embedder.model import TransformerEmbedder

    base = load_embedder(str(tiny_mistral_dir))
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "gate_proj"], init_lora_weights=False)
    torch.manual_seed(1)
    peft_model = get_peft_model(base.model, config)
    live = TransformerEmbedder(peft_model, base.tokenizer, base.spec, base.loaded_from)
    trained_vectors = live.encode_queries(TEXTS)
    peft_model.save_pretrained(tmp_path / "adapter")

    reloaded = load_embedder(str(tiny_mistral_dir), adapter=tmp_path / "adapter")
    plain = load_embedder(str(tiny_mistral_dir))
    assert np.abs(reloaded.encode_queries(TEXTS) - trained_vectors).max() < 1e-5
    assert np.abs(plain.encode_queries(TEXTS) - trained_vectors).max() > 1e-3
    assert "adapter=adapter#" in reloaded.signature and reloaded.signature != plain.signature


# ---- presets and errors ----------------------------------------------------------------------------
def test_missing_hub_model_says_how_to_get_it_and_the_licence():
    with pytest.raises(ModelNotFoundError) as info:
        load_embedder("linq")
    message = str(info.value)
    assert "huggingface-cli download Linq-AI-Research/Linq-Embed-Mistral" in message
    assert "CC-BY-NC-4.0" in message


def test_unknown_model_and_bad_adapter_give_clear_errors(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not available on this machine"):
        load_embedder("no-such-org/no-such-model")
    with pytest.raises(ModelNotFoundError, match="not a PEFT adapter"):
        load_embedder("minilm", adapter=tmp_path)
    (tmp_path / "model").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load_embedder(str(tmp_path / "model"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU choice")
def test_auto_picks_minilm_without_a_gpu(caplog):
    with caplog.at_level("WARNING"):
        emb = load_embedder("auto")
    assert emb.name == "minilm"
    assert "picked 'minilm'" in caplog.text


def test_signature_is_stable_across_loads(tiny_mistral_dir):
    a, b = load_embedder(str(tiny_mistral_dir)), load_embedder(str(tiny_mistral_dir))
    assert a.signature == b.signature
    assert "pool=last" in a.signature and "eos=1" in a.signature


# ---- llama-index ------------------------------------------------------------------------------------
def test_llamaindex_embedding_wraps_the_same_vectors(minilm):
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from embedder import LinqragEmbedding

    wrapped = LinqragEmbedding(minilm)
    assert isinstance(wrapped, BaseEmbedding)
    q = np.asarray(wrapped.get_query_embedding(QUERIES[0]))
    assert np.abs(q - minilm.encode_queries(QUERIES[:1])[0]).max() < 1e-6
    docs = np.asarray(wrapped.get_text_embedding_batch(RELEVANT))
    assert np.abs(docs - minilm.encode_documents(RELEVANT)).max() < 1e-6


def test_e5_small_runs_in_process_cut_to_its_window_and_takes_no_adapter(tmp_path):
    e5 = load_embedder("e5-small", max_length=64)
    passages = ["Honey bees store nectar as honey in wax combs.", "Magma cools into basalt. " * 200]
    d = e5.encode_documents(passages)
    q = e5.encode_queries(["where do bees keep honey"], instruction="ignored by E5")
    assert d.shape == (2, e5.dim) and d.dtype == np.float32
    assert np.allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    assert float(q[0] @ d[0]) > float(q[0] @ d[1])
    assert e5.count_tokens([e5.clip(passages[1], is_query=False)])[0] <= 64
    assert e5.signature != load_embedder("e5-small", max_length=128).signature  # a cache never mixes windows
    with pytest.raises(ModelNotFoundError):
        load_embedder("e5-small", adapter=tmp_path)
