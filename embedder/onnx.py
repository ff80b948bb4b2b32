"""The CPU inference path for encoder embedders: the model exported once to ONNX, run by ONNX Runtime.

The export holds the whole embedding (transformer, pooling, L2 norm), so a batch goes in as token
ids and comes out as unit vectors; tokenising, padding and length-sorted batching stay those of
:class:`~embedder.model.TransformerEmbedder`, so the two backends see the same ids. ``onnx`` runs
the fp32 graph (vectors within 1e-4 cosine of torch's); ``onnx-int8`` quantises its weights to int8
(ONNX Runtime's dynamic quantisation: activations stay float), 2.3-2.9x torch's speed on two CPU
cores with VNNI, at the quality docs/embedders.md reports (bench/RESULTS.md, "CPU indexing: the
ONNX backends").

An export is cached under ``cache_dir()/onnx/KEY`` where KEY digests the embedder's signature
(weights, adapter, pooling, templates) and the opset; the int8 file's name carries the ONNX
Runtime version that quantised it: a second load reuses it, a changed model or adapter gets its
own. Files are written through :func:`linqrag.files.replacing`, so a killed export leaves no half
model behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from embedder.model import TransformerEmbedder, embedder_signature
from embedder.openvino import BACKEND as OPENVINO
from embedder.openvino import OpenVinoSession, has_amx_bf16, openvino_available, why_not_openvino
from embedder.pooling import pool
from embedder.spec import BACKEND_CHOICES, EmbedderSpec
from linqrag.errors import LinqragError
from linqrag.files import replacing

log = logging.getLogger(__name__)

#: the backend ``auto`` picks for an encoder on a CPU without AMX when ONNX Runtime is installed
#: (docs/embedders.md gives the speed and the nDCG change that justify it; :func:`cpu_default`)
CPU_DEFAULT = "onnx-int8"
OPSET = 17
#: bumped when what is exported changes, so older cached files are not reused
EXPORT_VERSION = 2
#: rows per ONNX Runtime call (a model batch is run in slices of this many: faster on a CPU)
RUN_ROWS = 8
#: exports done by this process (a test sees a cached one reused)
EXPORTS = {"fp32": 0, "int8": 0}


class BackendUnavailableError(LinqragError, RuntimeError):
    """The backend asked for cannot run this embedder here; the message says what to use instead."""


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def cpu_default() -> str | None:
    """The backend ``auto`` gives an encoder on a CPU: OpenVINO in bf16 where the CPU has AMX (about 3x
    torch, vectors within 1e-4 cosine), else ONNX Runtime's int8 (2.3-2.9x, the nDCG bar met), else
    none (torch). docs/embedders.md gives the measurements behind each."""
    if openvino_available() and has_amx_bf16():
        return OPENVINO
    if onnxruntime_available():
        return CPU_DEFAULT
    return None


def resolve_backend(backend: str, spec: EmbedderSpec, device: torch.device, nf4: bool) -> str:
    """The backend ``backend`` means for this embedder: ``auto`` takes :func:`cpu_default` for an
    encoder on a CPU, torch otherwise (decoders, GPUs, 4-bit, neither runtime installed); an explicit
    exported backend that cannot serve it is refused with the reason."""
    if backend not in BACKEND_CHOICES:
        raise BackendUnavailableError(f"unknown backend {backend!r}; choose from {', '.join(BACKEND_CHOICES)}")
    if backend == "torch":
        return backend
    why_not = _why_not_exported(spec, device, nf4)
    if backend == "auto":
        chosen = None if why_not else cpu_default()
        if why_not is None and chosen is None:
            log.warning("embedding with torch: ONNX Runtime is not installed (pip install onnxruntime for the "
                        "faster CPU path)")
        return chosen or "torch"
    why_not = why_not or _why_not_runtime(backend)
    if why_not is not None:
        raise BackendUnavailableError(f"backend {backend!r} cannot run {spec.name!r}: {why_not}")
    return backend


def _why_not_exported(spec: EmbedderSpec, device: torch.device, nf4: bool) -> str | None:
    if spec.is_decoder:
        return "the ONNX path serves encoders (BERT-like models); use --backend torch for decoders"
    if device.type != "cpu":
        return f"the ONNX path is for CPUs; on {device.type} use --backend torch"
    if nf4:
        return "4-bit NF4 weights are torch-only; use --backend torch or quantization none"
    return None


def _why_not_runtime(backend: str) -> str | None:
    if backend == OPENVINO:
        return why_not_openvino()
    if not onnxruntime_available():
        return "ONNX Runtime is not installed (pip install onnxruntime for the faster CPU path)"
    return None


def backend_signature(signature: str, backend: str) -> str:
    """A torch signature as it reads for ``backend``: ONNX vectors are told apart from torch's, and
    int8 ones from fp32 ones, so an index refuses a query embedder that ran the other way."""
    return signature if backend == "torch" else f"{signature}|backend={backend}"


class _Pooled(torch.nn.Module):
    """The exported graph: token ids and mask in, pooled L2-normalised float32 vectors out."""

    def __init__(self, model: torch.nn.Module, pooling: str) -> None:
        super().__init__()
        self.model = model
        self.pooling = pooling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return F.normalize(pool(self.pooling, hidden, attention_mask).float(), p=2, dim=-1)


def export_key(embedder: TransformerEmbedder) -> str:
    """The cache folder's name: what decides the exported graph (the torch signature, the weights
    themselves, opset, export). The signature alone is not enough: it knows a local directory by
    its config and the sizes of its weight files, so two fine-tunes of one base would share it."""
    torch_signature = embedder_signature(embedder.loaded_from, embedder.spec, embedder.dtype_name)
    parts = [torch_signature, weights_digest(embedder.model), f"opset={OPSET}", f"export={EXPORT_VERSION}"]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def weights_digest(model: torch.nn.Module) -> str:
    """A digest of every parameter and buffer as loaded (an adapter merged in): about 0.2 s for MiniLM."""
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def onnx_model_path(embedder: TransformerEmbedder, quantized: bool, cache: Path | None = None) -> Path:
    """The cached ONNX file of ``embedder`` (int8 when ``quantized``), exported the first time."""
    from linqrag.settings import cache_dir

    folder = (cache or cache_dir()) / "onnx" / export_key(embedder)
    fp32 = folder / "model.onnx"
    if not fp32.exists():
        _export(embedder, fp32)
    if not quantized:
        return fp32
    import onnxruntime

    int8 = folder / f"model-int8-ort{onnxruntime.__version__}.onnx"  # another quantiser, another file
    if not int8.exists():
        _quantize(fp32, int8)
    return int8


@contextlib.contextmanager
def _replacing(target: Path, what: str, instead: str):
    """:func:`linqrag.files.replacing`, with a failure refused as ``what`` could not be made (use ``instead``)."""
    try:
        with replacing(target) as tmp:
            yield tmp
    except Exception as error:
        raise BackendUnavailableError(f"{what} could not be made ({error.__class__.__name__}: {error}); "
                                      f"use --backend {instead}") from error


def _export(embedder: TransformerEmbedder, target: Path) -> None:
    started = time.perf_counter()
    traced = target.with_name(f"traced.{os.getpid()}.tmp")  # scratch: the fused graph is what is kept
    try:
        with _replacing(target, f"the ONNX export of {embedder.name}", "torch") as tmp:
            _trace(embedder, traced)
            _fuse(traced, tmp, embedder.model.config)
    finally:
        traced.unlink(missing_ok=True)
    EXPORTS["fp32"] += 1
    log.warning("exported %s to ONNX once in %.1fs (cached in %s)", embedder.name, time.perf_counter() - started,
                target.parent)


def _trace(embedder: TransformerEmbedder, path: Path) -> None:
    """Trace the model with eager attention: its MatMul-Softmax-MatMul is what ONNX Runtime fuses
    into one Attention node (SDPA traces to a pattern it does not recognise)."""
    model = embedder.model
    before = getattr(model.config, "_attn_implementation", None)
    switch = hasattr(model, "set_attn_implementation") and before not in (None, "eager")
    if switch:
        model.set_attn_implementation("eager")
    sample = embedder.pad(embedder.tokenize(["an example sentence", "a second, longer example sentence"]))
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"}}
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
            torch.onnx.export(_Pooled(model, embedder.spec.pooling).eval(),
                              (sample["input_ids"], sample["attention_mask"]), str(path),
                              input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    finally:
        if switch:
            model.set_attn_implementation(before)


def _fuse(traced: Path, target: Path, config) -> None:
    """ONNX Runtime's transformer fusions (attention, skip layer norm, bias GELU); a graph they do
    not fit is kept as traced (still exact, only slower)."""
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        heads, hidden = getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0)
        optimize_model(str(traced), model_type="bert", num_heads=heads, hidden_size=hidden).save_model_to_file(
            str(target))
    except Exception as error:  # noqa: BLE001 - an optional speed-up: the traced graph is still right
        log.warning("ONNX Runtime could not fuse the graph (%s); using it unfused", error)
        os.replace(traced, target)


def _quantize(fp32: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser advises pre-processing on the root logger, every time
    try:
        with _replacing(target, f"the int8 model of {fp32}", "onnx") as tmp:
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             extra_options={"DefaultTensorType": 1})  # 1: float, for fused nodes' outputs
    finally:
        root.setLevel(level)
    EXPORTS["int8"] += 1


def _ort_runner(model_path: Path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the same cores torch would use
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(["embedding"], feeds)[0]


class OnnxEmbedder(TransformerEmbedder):
    """A :class:`TransformerEmbedder` whose forward pass runs the exported graph in ONNX Runtime or
    OpenVINO (inference only: training and anything that needs gradients loads the torch backend)."""

    def __init__(self, model: torch.nn.Module, tokenizer, spec: EmbedderSpec, loaded_from, backend: str,
                 batch_size: int = 32) -> None:
        super().__init__(model, tokenizer, spec, loaded_from, batch_size=batch_size)
        self.backend = backend
        self.model_path = onnx_model_path(self, quantized=backend == "onnx-int8")
        #: feeds (token ids and mask, numpy) -> unit vectors: ONNX Runtime's session or OpenVINO's model
        self._run = (OpenVinoSession(self.model_path, torch.get_num_threads()).run if backend == OPENVINO
                     else _ort_runner(self.model_path))

    @property
    def signature(self) -> str:
        return backend_signature(super().signature, self.backend)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def __repr__(self) -> str:
        return f"OnnxEmbedder({self.signature}, dim={self.dim})"

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled unit vectors ``(batch, dim)`` from the exported graph (no autograd graph).

        The batch runs :data:`RUN_ROWS` rows at a time, each slice cut to its own longest row: on a
        CPU, ONNX Runtime is faster on small batches (bench/RESULTS.md, "CPU indexing: the ONNX backends"),
        and a slice of similar lengths pads less than the whole batch."""
        ids, mask = inputs["input_ids"].numpy(), inputs["attention_mask"].numpy()
        out = []
        for start in range(0, len(ids), RUN_ROWS):
            rows = slice(start, start + RUN_ROWS)
            width = int(mask[rows].sum(axis=1).max())
            cols = slice(ids.shape[1] - width, None) if self.spec.padding_side == "left" else slice(0, width)
            feeds = {"input_ids": np.ascontiguousarray(ids[rows, cols]),
                     "attention_mask": np.ascontiguousarray(mask[rows, cols])}
            out.append(self._run(feeds))
        return torch.from_numpy(np.concatenate(out))
