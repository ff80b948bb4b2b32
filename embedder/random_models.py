"""Random-weight Mistral models built from ``MistralConfig``: no download, real architecture.

Used by the tests (a 2-layer model in milliseconds) and by the GPU benchmark (a model shaped
like Mistral-7B, to measure memory and speed of bf16 vs 4-bit without fetching 14 GB).
"""

from __future__ import annotations

from pathlib import Path

#: Words of the small word-level vocabulary; enough to tokenise the test sentences.
TOKENIZER_TEXT = (
    "the quick brown fox jumps over the lazy dog . what is retrieval ? dense retrieval embeds "
    "queries and passages ; bm25 counts words . paris is the capital of france . plants turn "
    "light into energy by photosynthesis . instruct : given a question , retrieve passages that "
    "answer the question \n query : a b c d e f g h i j k l m n o p q r s t u v w x y z"
)

TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 512}
MISTRAL_7B = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 8, "max_position_embeddings": 32768, "vocab_size": 32000}


def build_word_tokenizer(add_eos: bool = False):
    """A word-level tokenizer shaped like Mistral's: ``<s>`` first, ``</s>`` only if asked."""
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


def build_random_mistral(directory: Path, shape: str = "tiny", add_eos: bool = False, seed: int = 0,
                         device: str = "cpu", dtype=None) -> Path:
    """Save a random ``MistralModel`` and a tokenizer to ``directory``; ``shape`` is tiny or 7b."""
    import torch
    from transformers import MistralConfig, MistralModel

    tokenizer = build_word_tokenizer(add_eos)
    dims = dict(TINY if shape == "tiny" else MISTRAL_7B)
    dims.setdefault("vocab_size", len(tokenizer))
    config = MistralConfig(**dims, bos_token_id=1, eos_token_id=2, pad_token_id=None)
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype or torch.float32)
    try:
        with torch.device(device):
            model = MistralModel(config)
    finally:
        torch.set_default_dtype(previous)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)
