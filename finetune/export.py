"""``python -m finetune.export --adapter DIR --out DIR``: a LoRA adapter merged into its base and
saved as a plain transformers + sentence-transformers model directory.

What serving engines load: vLLM (``--runner pooling``), TEI and ``SentenceTransformer(DIR)`` read
the merged weights with no PEFT at serving time. The sentence-transformers files carry the
pooling (mean, CLS or last token), the window and L2 normalisation; a query template that is a
plain prefix (E5/Linq's ``Instruct: ...\\nQuery: ``) becomes the ``query`` prompt. The base is
recorded by name (the preset and the model id it stands for), never as a path on this machine,
in ``config.json`` and ``linqrag_export.json``.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from embedder.prompts import format_query

EXPORT_RECORD = "linqrag_export.json"
POOLING_MODES = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token", "last": "pooling_mode_lasttoken"}


@dataclass(frozen=True)
class ExportReport:
    out: str
    base: str
    base_model: str
    adapter: str
    pooling: str
    max_length: int
    query_prompt: str | None
    notes: tuple[str, ...] = ()


def query_prefix(template: str | None, instruction: str) -> tuple[str | None, str | None]:
    """The query template as a prefix (``None`` when it is not one) and, if not, why."""
    if template is None:
        return None, None
    marker = "\x00QUERY\x00"
    text = format_query(marker, instruction, template)
    if not text.endswith(marker):
        return None, ("the query template has a suffix; sentence-transformers prompts are prefixes only, so "
                      "format queries yourself (see linqrag_export.json)")
    return text.removesuffix(marker), None


def write_sentence_transformers_files(out: Path, dim: int, pooling: str, max_length: int,
                                      query_prompt: str | None) -> None:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (out / "modules.json").write_text(json.dumps(modules, indent=1))
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_length, "do_lower_case": False}))
    (out / "1_Pooling").mkdir(exist_ok=True)
    modes = {mode: name == pooling for name, mode in POOLING_MODES.items()}
    (out / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": dim, **modes, "pooling_mode_max_tokens": False,
         "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True}, indent=1))
    (out / "2_Normalize").mkdir(exist_ok=True)
    prompts = {"query": query_prompt or "", "document": ""}
    (out / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": prompts, "default_prompt_name": None, "similarity_fn_name": "cosine"}, indent=1))


def export_adapter(adapter: str | Path, out: str | Path, base: str | None = None,
                   overwrite: bool = False) -> ExportReport:
    """Merge ``adapter`` into its base (``base``, default the adapter's own record) and save to ``out``."""
    from embedder import adapter_base, load_embedder
    from embedder.sources import ModelNotFoundError

    adapter, out = Path(adapter), Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ModelNotFoundError(f"{out} exists and is not empty; choose another --out or pass --overwrite")
    if not (adapter / "adapter_config.json").exists():
        raise ModelNotFoundError(f"{adapter} is not a PEFT adapter directory (no adapter_config.json)")
    base = base or adapter_base(adapter)
    if not base:
        raise ModelNotFoundError(f"{adapter}: no base recorded; pass --base")
    embedder = load_embedder(base, adapter=adapter, quantization="none", backend="torch")
    if embedder.loaded_from.quantization:
        raise ModelNotFoundError(f"{adapter}: a 4-bit base cannot be merged exactly; export from an unquantised base")
    spec = embedder.spec
    base_model = embedder.loaded_from.model_ref  # the hub id the preset stands for, not a local path
    merged = embedder.model  # load_embedder merges an adapter into unquantised weights (merge_and_unload)
    if hasattr(merged, "merge_and_unload"):
        merged = merged.merge_and_unload()
    merged.config._name_or_path = base_model
    notes = []
    prompt, why = query_prefix(spec.query_template, spec.default_instruction)
    if why:
        notes.append(why)
    if spec.document_template is not None:
        notes.append("documents have a template; format them as linqrag_export.json says before embedding")
    if spec.append_eos:
        notes.append("the embedder pools an EOS token: check that the serving engine appends it (docs/scaling-out.md)")

    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    merged.save_pretrained(str(partial), safe_serialization=True)
    embedder.tokenizer.save_pretrained(str(partial))
    write_sentence_transformers_files(partial, embedder.dim, spec.pooling, embedder.max_length, prompt)
    adapter_meta = {}
    if (adapter / "linqrag_adapter.json").exists():
        adapter_meta = json.loads((adapter / "linqrag_adapter.json").read_text())
    report = ExportReport(str(out), str(base) if not Path(str(base)).is_absolute() else base_model, base_model,
                          adapter.name, spec.pooling, embedder.max_length, prompt, tuple(notes))
    record = {**asdict(report), "out": None, "query_template": spec.query_template,
              "document_template": spec.document_template, "append_eos": spec.append_eos,
              "default_instruction": spec.default_instruction, "step": adapter_meta.get("step"),
              "adapter_signature": embedder.signature}
    (partial / EXPORT_RECORD).write_text(json.dumps(record, indent=1))
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return report


if __name__ == "__main__":  # ``python -m finetune.export``: the flags live in finetune.cli
    from finetune.cli import export_main

    sys.exit(export_main())
