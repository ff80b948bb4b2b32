"""Stage 6: LoRA contrastive training of the base embedder.

InfoNCE (``temperature_loss``, by default chosen for the base's kind) over in-batch negatives and
each example's hard negatives (mined chunks plus the LLM's negative), MarginMSE on the teacher's
margins beside it (``distill_weight``), homogeneous task batches then a short mixed phase, gradient
checkpointing, QLoRA when the base is 4-bit. A checkpoint (a PEFT adapter directory plus the
optimizer state) is written every ``checkpoint_every`` steps; a killed run restarts from the last
one, with the same batch plan, and ends where an uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from finetune.batching import plan_batches
from finetune.config import TRAIN_FINGERPRINT_KEYS, DomainConfig
from finetune.distributed import ONE_PROCESS, Ranks, barrier, gather_rows, ranks, sum_gradients
from finetune.lora import add_lora, load_adapter_weights, save_adapter, trainable_summary
from finetune.losses import info_nce, margin_mse
from finetune.records import TrainingExample
from finetune.rundir import RunDir, RunDirError, append_jsonl, iter_jsonl
from linqrag.errors import ConfigError
from linqrag.files import write_jsonl_atomic

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.pt"
#: Examples in the fixed probe batch whose loss is logged at every checkpoint (a steadier curve).
PROBE_SIZE = 16


@dataclass(frozen=True)
class Batch:
    """Tensors of one step: ``targets[i]`` is the column of query ``i``'s positive among the documents;
    ``margin_rows/columns/values`` are the soft-label triples (query row, negative column, margin)."""

    query_ids: list  # token ids of each query and document, padded where embedded (a rank pads its share)
    doc_ids: list
    targets: torch.Tensor
    exclude: torch.Tensor
    margin_rows: torch.Tensor
    margin_columns: torch.Tensor
    margin_values: torch.Tensor


def build_batch(embedder, examples: Sequence[TrainingExample], texts: dict[str, str]) -> Batch:
    """Queries with their task instruction; documents = positives (their ``positive_text`` view where
    they have one), mined and LLM negatives, each once."""
    query_ids = [ids for ex in examples for ids in embedder.query_ids([ex.query], ex.instruction)]
    keys: list[str] = []
    docs: list[str] = []
    chunk_of: list[str | None] = []  # the pool chunk a column shows (None: an LLM-written text)

    def column(key: str, text: str, chunk: str | None) -> int:
        if key not in keys:
            keys.append(key)
            docs.append(text)
            chunk_of.append(chunk)
        return keys.index(key)

    targets = [column(f"view:{ex.pair_id}" if ex.positive_text else ex.positive_id,
                      ex.positive_text or texts[ex.positive_id], ex.positive_id) for ex in examples]
    rows, cols, margins = [], [], []
    for i, ex in enumerate(examples):
        for j, neg in enumerate(ex.negative_ids):
            col = column(neg, texts[neg], neg)
            if j < len(ex.teacher_margins):
                rows.append(i)
                cols.append(col)
                margins.append(ex.teacher_margins[j])
        if ex.llm_negative:
            column(f"llm:{ex.pair_id}", ex.llm_negative, None)
    # another view of a row's own chunk, or the same text under another key, is not its negative
    exclude = torch.zeros((len(examples), len(docs)), dtype=torch.bool)
    for row, target in enumerate(targets):
        for col, text in enumerate(docs):
            if col != target and (chunk_of[col] == chunk_of[target] or text.strip() == docs[target].strip()):
                exclude[row, col] = True
    return Batch(
        query_ids=query_ids,
        doc_ids=embedder.document_ids(docs),
        targets=torch.tensor(targets, dtype=torch.long),
        exclude=exclude,
        margin_rows=torch.tensor(rows, dtype=torch.long),
        margin_columns=torch.tensor(cols, dtype=torch.long),
        margin_values=torch.tensor(margins, dtype=torch.float32),
    )


def _embed(embedder, ids: list, where: Ranks) -> torch.Tensor:
    """All rows' embeddings; with several ranks this one embeds its share and gathers the rest."""
    if where.world == 1:
        return embedder.forward(embedder.pad(ids))
    lo, hi = where.share(len(ids))
    # an empty share still runs one row (then drops it) so dtype, device and the graph are right
    local = embedder.forward(embedder.pad(ids[lo:hi] if hi > lo else ids[:1]))[: hi - lo]
    return gather_rows(local, len(ids), where)


def batch_loss(embedder, batch: Batch, temperature: float, distill_weight: float = 0.0,
               where: Ranks = ONE_PROCESS) -> torch.Tensor:
    """InfoNCE, plus ``distill_weight`` x MarginMSE on the teacher's margins when there are any.
    Over the global batch on every rank (:mod:`finetune.distributed`)."""
    q = _embed(embedder, batch.query_ids, where)
    d = _embed(embedder, batch.doc_ids, where)
    device = q.device
    targets = batch.targets.to(device)
    loss = info_nce(q, d, targets, temperature, batch.exclude.to(device))
    if distill_weight > 0 and batch.margin_rows.numel():
        loss = loss + distill_weight * margin_mse(q, d, targets, batch.margin_rows.to(device),
                                                  batch.margin_columns.to(device),
                                                  batch.margin_values.to(device).to(q.dtype), temperature)
    return loss


def plan_fingerprint(config: DomainConfig, plan: list[list[int]], examples: Sequence[TrainingExample]) -> str:
    payload = json.dumps([{k: getattr(config, k) for k in TRAIN_FINGERPRINT_KEYS}, plan, [e.pair_id for e in examples]])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def lr_lambda(warmup: int, steps: int):
    """Linear warm-up, then linear decay to a tenth of the peak."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.1, 1 - 0.9 * (step - warmup) / max(1, steps - warmup))

    return factor


def archive_checkpoints(run: RunDir) -> Path | None:
    """Move earlier checkpoints and their loss log aside (a fresh training never deletes a checkpoint)."""
    if not run.checkpoints.exists():
        return None
    target = run.root / f"checkpoints.prev-{time.strftime('%Y%m%d-%H%M%S')}"
    run.checkpoints.rename(target)
    if run.losses.exists():
        run.losses.rename(target / "losses.jsonl")
    return target


@dataclass
class TrainingSetup:
    """Everything the loop needs, made by :func:`setup_training`: the data and its batch plan, the
    LoRA model with its optimizer and schedule, and the step to resume after (0: a new training)."""

    examples: list[TrainingExample]
    texts: dict[str, str]  # chunk_id -> the text a positive or mined negative is embedded as
    plan: list[list[int]]
    fingerprint: str
    embedder: object
    model: torch.nn.Module
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    temperature: float
    quantized: bool
    checkpointing: bool
    where: Ranks
    start: int = 0
    probe_batch: Batch | None = None
    stopped_at: int | None = None  #: the step the budget's deadline ended training after
    meta: dict = field(default_factory=dict)  #: what every checkpoint records about the run

    def probe_loss(self) -> float | None:
        """The loss of the fixed probe batch, without dropout or gradients."""
        if self.probe_batch is None:
            return None
        eval_mode(self.model)
        with torch.no_grad():
            value = batch_loss(self.embedder, self.probe_batch, self.temperature).item()
        self.model.train()
        return value


def _training_data(config: DomainConfig, run: RunDir, tasks_order: Sequence[str], fresh: bool, where: Ranks):
    """The examples, the chunk texts, the batch plan (saved) and its fingerprint; with ``fresh``,
    earlier checkpoints are moved aside first."""
    pool = run.pool()
    examples = run.examples()
    if len(examples) < 2:
        raise ConfigError(f"{len(examples)} training example(s) survived filtering; at least 2 are needed "
                         "(more chunks, a better generator or looser filters)")
    texts = {c.chunk_id: c.indexed_text for c in pool.chunks}
    plan = plan_batches(examples, config.batch_size, config.steps, config.mixed_steps, config.seed, tasks_order)
    if where.main:
        write_jsonl_atomic(run.path("batch_plan.jsonl"), ({"step": i + 1, "examples": b} for i, b in enumerate(plan)))
    fingerprint = plan_fingerprint(config, plan, examples)
    if fresh and where.main:
        moved = archive_checkpoints(run)
        if moved:
            log.warning("earlier checkpoints moved to %s", moved)
    barrier(where)  # every rank sees the same checkpoints before looking for one to resume
    return examples, texts, plan, fingerprint


def _resume(setup: TrainingSetup, run: RunDir) -> None:
    """Continue from the last checkpoint with a trainer state (refused if it was another setup), and
    cut the loss log back to it."""
    previous = [p for p in run.checkpoint_dirs() if (p / STATE_FILE).exists()]
    if previous:
        state = torch.load(previous[-1] / STATE_FILE, weights_only=False)
        if state.get("fingerprint") != setup.fingerprint:
            raise RunDirError(
                f"{run.checkpoints} holds checkpoints of a different training setup; rerun with --from-stage train "
                "to train anew (old checkpoints are moved aside, not deleted)")
        load_adapter_weights(setup.model, previous[-1])
        setup.optimizer.load_state_dict(state["optimizer"])
        setup.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        setup.start = int(state["step"])
        log.warning("resuming training from %s (step %d)", previous[-1].name, setup.start)
    kept = [row for row in iter_jsonl(run.losses) if row.get("step", 0) <= setup.start]
    if setup.where.main:
        write_jsonl_atomic(run.losses, kept)


def setup_training(config: DomainConfig, run: RunDir, tasks_order: Sequence[str] = (),
                   fresh: bool = False) -> TrainingSetup:
    """Data, model (the base with LoRA), optimizer and schedule, resumed from the last checkpoint."""
    from embedder import load_embedder

    where = ranks()
    examples, texts, plan, fingerprint = _training_data(config, run, tasks_order, fresh, where)
    torch.manual_seed(config.seed)
    embedder = load_embedder(config.base, quantization=config.quantization, max_length=config.train_max_length,
                             backend="torch")
    quantized = embedder.loaded_from.quantization == "nf4"
    checkpointing = gradient_checkpointing(config, embedder)
    model = add_lora(embedder.model, config.lora_r, config.lora_alpha, config.lora_dropout, quantized,
                     checkpointing)
    embedder.model = model
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config.warmup_steps, config.steps))
    setup = TrainingSetup(examples, texts, plan, fingerprint, embedder, model, params, optimizer, scheduler,
                          config.resolved_temperature(embedder.spec.pooling), quantized, checkpointing, where)
    _resume(setup, run)
    probe = [examples[i] for i in sorted(random.Random(config.seed + 7).sample(range(len(examples)),
                                                                                min(PROBE_SIZE, len(examples))))]
    setup.probe_batch = build_batch(embedder, probe, texts) if len(probe) >= 2 else None
    setup.meta = {
        "base": config.base, "pooling": embedder.spec.pooling, "query_template": embedder.spec.query_template,
        "document_template": embedder.spec.document_template, "append_eos": embedder.spec.append_eos,
        "quantization": "nf4" if quantized else None, "corpus": config.corpus, "run_dir": str(run.root),
        "default_instruction": _most_common_instruction(examples), "lora_r": config.lora_r,
    }
    return setup


def gradient_checkpointing(config: DomainConfig, embedder) -> bool:
    """The setting, or by default on for decoders and bases of 1B parameters or more."""
    if config.gradient_checkpointing is not None:
        return config.gradient_checkpointing
    # decoders are deep: SmolLM2-135M (30 layers) at batch 16 took 17 GB without it
    return embedder.spec.is_decoder or sum(p.numel() for p in embedder.model.parameters()) >= 1e9


def _save_checkpoint(setup: TrainingSetup, run: RunDir, step: int) -> None:
    target = run.checkpoints / f"step-{step:06d}"
    save_adapter(setup.model, target, {**setup.meta, "step": step, "processes": setup.where.world}, {STATE_FILE: {
        "step": step, "optimizer": setup.optimizer.state_dict(), "scheduler": setup.scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(), "fingerprint": setup.fingerprint}})


def training_loop(config: DomainConfig, run: RunDir, setup: TrainingSetup, show_progress: bool = True,
                  stop_at: float | None = None) -> list[float]:
    """The steps after ``setup.start``: one logged row each, a checkpoint every ``checkpoint_every``
    steps and at the end (rank 0 writes). With ``stop_at`` (a ``time.perf_counter()`` value: the
    budget's deadline) training ends, with a checkpoint, before a step that would pass it.
    Returns each step's seconds."""
    where, examples = setup.where, setup.examples
    if setup.start == 0:
        value = setup.probe_loss()
        if where.main:
            append_jsonl(run.losses, [{"step": 0, "probe_loss": value}])
    setup.model.train()
    step_seconds: list[float] = []
    homogeneous_steps = config.steps - min(config.mixed_steps, config.steps)
    bar = tqdm(total=config.steps, initial=setup.start, desc="train", unit="step",
               disable=not show_progress or not where.main)
    for step in range(setup.start + 1, config.steps + 1):
        t0 = time.perf_counter()
        if stop_at is not None and step_seconds and t0 + sum(step_seconds) / len(step_seconds) > stop_at:
            setup.stopped_at = step - 1
            if (step - 1) % config.checkpoint_every and where.main:
                _save_checkpoint(setup, run, step - 1)
            log.warning("train: the budget's deadline stops training after step %d of %d", step - 1, config.steps)
            break
        members = [examples[i] for i in setup.plan[step - 1]]
        loss = batch_loss(setup.embedder, build_batch(setup.embedder, members, setup.texts), setup.temperature,
                          config.distill_weight, where)
        loss.backward()
        sum_gradients(setup.params, where)
        torch.nn.utils.clip_grad_norm_(setup.params, 1.0)
        setup.optimizer.step()
        setup.scheduler.step()
        setup.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - t0
        step_seconds.append(seconds)
        loss_value = loss.item()
        row = {"step": step, "loss": round(loss_value, 5), "lr": setup.scheduler.get_last_lr()[0],
               "seconds": round(seconds, 3), "phase": "homogeneous" if step <= homogeneous_steps else "mixed",
               "tasks": sorted({m.task_id for m in members}), "batch": len(members)}
        if step % config.checkpoint_every == 0 or step == config.steps:
            row["probe_loss"] = setup.probe_loss()
            if where.main:
                _save_checkpoint(setup, run, step)
        if where.main:
            append_jsonl(run.losses, [row])
        bar.set_postfix(loss=f"{loss_value:.3f}")
        bar.update(1)
    bar.close()
    barrier(where)  # rank 0's last checkpoint and log row are written before any rank summarises
    return step_seconds


def training_summary(config: DomainConfig, run: RunDir, setup: TrainingSetup, step_seconds: Sequence[float]) -> dict:
    """The train stage's ledger entry: steps, losses, speed and how the model was trained."""
    losses = [r for r in iter_jsonl(run.losses) if "loss" in r]
    return {
        "steps": config.steps,
        "stopped_by_budget_after": setup.stopped_at,
        "resumed_from": setup.start,
        "examples": len(setup.examples),
        "checkpoints": [p.name for p in run.checkpoint_dirs()],
        "seconds_per_step": round(sum(step_seconds) / len(step_seconds), 3) if step_seconds else None,
        "first_loss": losses[0]["loss"] if losses else None,
        "last_loss": losses[-1]["loss"] if losses else None,
        "quantized_base": setup.quantized,
        "gradient_checkpointing": setup.checkpointing,
        "temperature": setup.temperature,
        "distill_weight": config.distill_weight,
        "processes": setup.where.world,
        **trainable_summary(setup.model),
    }


def run_train_stage(config: DomainConfig, run: RunDir, tasks_order: Sequence[str] = (), fresh: bool = False,
                    show_progress: bool = True, stop_at: float | None = None) -> dict:
    """Set up (or resume), train to ``steps`` (or the deadline ``stop_at``), summarise; rank 0 marks
    the stage done."""
    setup = setup_training(config, run, tasks_order, fresh)
    step_seconds = training_loop(config, run, setup, show_progress, stop_at)
    summary = training_summary(config, run, setup, step_seconds)
    if setup.where.main:
        run.mark_done("train", summary)
    return summary


def eval_mode(model: torch.nn.Module) -> None:
    """``model.eval()`` for dropout, but 4-bit layers stay in training mode: bitsandbytes repacks
    4-bit weights for fast CPU inference the first time it sees an eval-mode forward, and the
    repacked path has no backward, which would silently cut the gradient of every later QLoRA step."""
    model.eval()
    for module in model.modules():
        if type(module).__name__ == "Linear4bit":
            module.training = True


def _most_common_instruction(examples: Sequence[TrainingExample]) -> str | None:
    counts: dict[str, int] = {}
    for ex in examples:
        counts[ex.instruction] = counts.get(ex.instruction, 0) + 1
    return max(counts, key=counts.get) if counts else None


def remove_partial_checkpoints(run: RunDir) -> None:
    for p in run.checkpoints.glob("*.partial") if run.checkpoints.is_dir() else []:
        shutil.rmtree(p, ignore_errors=True)
