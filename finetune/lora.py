"""LoRA on the attention and MLP projections of the base embedder, saved as PEFT adapters that
``embedder.load_embedder(base, adapter=PATH)`` loads.

The adapter wraps the same bare transformer ``embedder/`` encodes with (``AutoModel``: no LM
head), so training, evaluation and serving share pooling, templates and EOS handling; the
adapter also records them in ``linqrag_adapter.json`` beside PEFT's own config.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch

#: Projection names per family: attention (q, k, v, o) and MLP (gate, up, down / intermediate, output).
DECODER_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: BERT-style encoders (MiniLM): attention self q/k/v, its output, the MLP in and out; not the pooler.
ENCODER_TARGET_REGEX = (r".*layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
                        r"|intermediate\.dense|output\.dense)")


def lora_targets(model: torch.nn.Module) -> list[str] | str:
    """Target modules for ``model``: decoder projections, BERT projections, or every linear layer."""
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) or "Linear" in type(m).__name__]
    present = sorted({n.rsplit(".", 1)[-1] for n in names} & set(DECODER_TARGETS))
    if present:
        return present
    if any(re.fullmatch(ENCODER_TARGET_REGEX, n) for n in names):
        return ENCODER_TARGET_REGEX
    return "all-linear"


def add_lora(model: torch.nn.Module, r: int, alpha: int, dropout: float, quantized: bool,
             gradient_checkpointing: bool):
    """``model`` wrapped by PEFT with fresh LoRA weights; QLoRA preparation when the base is 4-bit."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif gradient_checkpointing and getattr(model, "supports_gradient_checkpointing", False):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=lora_targets(model), bias="none")
    return get_peft_model(model, config)


def trainable_summary(model: torch.nn.Module) -> dict:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_parameters": trainable, "total_parameters": total}


def save_adapter(peft_model, target: Path, meta: dict, extra_files: dict[str, object] | None = None) -> Path:
    """Write an adapter directory atomically (a ``.partial`` sibling renamed into place)."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    peft_model.save_pretrained(str(partial))
    (partial / "linqrag_adapter.json").write_text(json.dumps(meta, indent=1))
    for name, obj in (extra_files or {}).items():
        torch.save(obj, partial / name)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def load_adapter_weights(peft_model, adapter_dir: Path) -> None:
    """Put a saved adapter's LoRA weights back into a freshly wrapped model (resuming training)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = load_file(str(adapter_dir / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(peft_model, state)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise RuntimeError(f"{adapter_dir}: adapter weights do not fit the model ({unexpected[:3]} ...)")
