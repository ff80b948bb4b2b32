"""``--budget MINUTES``: size a run to the time this machine has.

Before the first stage, the run measures what its cost depends on, on this machine and this corpus
(:func:`measure_rates`: a few real generation prompts, two real LoRA training steps, the base's
encoding speed, reading and chunking a sample of documents), then picks the largest pool, LLM
prompts and steps whose expected minutes fit the budget (:func:`choose_plan`, a pure function of
those rates). Sizes grow together from the shipped recipe (:data:`RECIPE`, scale 1) and never past
``budget_max_scale`` (the learning curve in bench/RESULTS.md found no real-query gain from 0.17x to
1.06x the recipe on SciFact and NFCorpus, so the default cap is the recipe itself). Settings given
explicitly keep their values and are costed as given. A plan that cannot fit says so before the
long stages start; during the run the train stage stops at the budget's deadline (with a
checkpoint) so a slow generation cannot push the run far past it.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from finetune.config import DomainConfig
from finetune.rundir import read_json
from finetune.sources import needs_llm
from linqrag.errors import ConfigError
from linqrag.files import write_json_atomic

log = logging.getLogger("finetune")

#: The settings a budget sizes.
PLANNED = ("max_chunks", "max_queries", "max_heldout_queries", "steps", "checkpoint_every")
#: Plan to this share of the budget: the cost model is a model, and a run's speed drifts.
SAFETY = 0.85
#: A brainstorm prompt costs about this many generation prompts (longer answers).
BRAINSTORM_PROMPT_COST = 3.0
#: Seconds the report and the mine stage take beyond what scales (measured: 0.0-0.1 min each).
FIXED_SECONDS = 10.0
PROBE_DOCUMENTS = 24
#: prompts per minute recorded when the run asks the generator nothing (its minutes are then zero)
NO_LLM = 1e9
PROBE_PROMPTS = 12


class BudgetError(ConfigError):
    """The budget cannot be planned (no corpus, a bad value)."""


@dataclass(frozen=True)
class Sizes:
    max_chunks: int
    max_queries: int
    max_heldout_queries: int
    steps: int
    checkpoint_every: int  #: grows with the steps, so the evaluate stage scores the same few checkpoints

    def scaled(self, scale: float, floor: Sizes) -> Sizes:
        pairs = zip(astuple(self), astuple(floor), strict=True)
        return Sizes(*(max(low, round(value * scale)) for value, low in pairs))


def astuple(sizes: Sizes) -> tuple[int, ...]:
    return tuple(getattr(sizes, name) for name in PLANNED)


#: Scale 1: the defaults every lever of the earlier work was measured with (bench/RESULTS.md).
RECIPE = Sizes(1200, 240, 120, 60, 20)
#: The smallest run worth making: a pool, prompts and steps below these teach and test too little.
FLOOR = Sizes(200, 40, 40, 20, 7)


@dataclass(frozen=True)
class Rates:
    """What a run's minutes depend on, measured on this machine (see :func:`measure_rates`)."""

    prompts_per_minute: float  #: generation prompts answered per minute
    rejected_share: float  #: share of answers the generate stage rejects (each is asked again)
    seconds_per_step: float  #: one training step at the run's batch size
    documents_per_second: float  #: pool chunks the base (and teacher) embeds per second
    queries_per_second: float  #: short queries it embeds per second
    load_seconds: float  #: loading the base embedder once
    generator_load_seconds: float
    read_seconds: float  #: reading the whole corpus (the chunk stage does)
    seconds_per_document: float  #: chunking one document
    documents: int  #: in the corpus
    sample_chunks: tuple[int, ...]  #: chunks each sampled document gives
    probe_seconds: float = 0.0  #: what measuring cost (spent from the budget)

    def usable_per_document(self, cap: int) -> float:
        """Chunks a document gives the pool when each may give at most ``cap``."""
        return sum(min(n, cap) for n in self.sample_chunks) / max(len(self.sample_chunks), 1)

    def chunks_available(self, max_per_doc: int) -> int:
        """About how many chunks the corpus can give the pool."""
        return max(4, round(self.usable_per_document(max_per_doc) * self.documents))


@dataclass(frozen=True)
class Plan:
    budget_minutes: float
    sizes: Sizes
    scale: float
    explicit: tuple[str, ...]  #: settings the user gave, kept as given
    stage_minutes: dict[str, float]
    expected_minutes: float  #: the stages plus the probes
    overrun: bool
    reasons: tuple[str, ...] = ()
    rates: Rates | None = None
    notes: tuple[str, ...] = field(default=())

    def settings(self) -> dict[str, int]:
        """The planned values of the settings the user did not give."""
        return {name: getattr(self.sizes, name) for name in PLANNED if name not in self.explicit}

    def describe(self) -> str:
        s = self.sizes
        stages = ", ".join(f"{k} {v:.1f}" for k, v in self.stage_minutes.items() if v >= 0.05)
        head = (f"budget {self.budget_minutes:g} min: {s.max_chunks:,} chunks, "
                f"{s.max_queries + s.max_heldout_queries:,} LLM prompts ({s.max_queries:,} training + "
                f"{s.max_heldout_queries:,} held-out), {s.steps:,} steps, expected {self.expected_minutes:.1f} min "
                f"({stages})")
        return "\n".join([head, *(f"  because {r}" for r in self.reasons), *(f"  note: {n}" for n in self.notes)])

    def to_json(self) -> dict:
        data = asdict(self)
        data["sizes"] = asdict(self.sizes)
        return data

    @classmethod
    def from_json(cls, data: dict) -> Plan:
        rates = Rates(**{**data["rates"], "sample_chunks": tuple(data["rates"]["sample_chunks"])}) \
            if data.get("rates") else None
        return cls(**{**data, "sizes": Sizes(**data["sizes"]), "explicit": tuple(data["explicit"]),
                      "reasons": tuple(data.get("reasons", ())), "notes": tuple(data.get("notes", ())),
                      "rates": rates})


# --- the cost model (pure) ---------------------------------------------------------------------------

def expected_seconds(sizes: Sizes, rates: Rates, config: DomainConfig) -> dict[str, float]:
    """Seconds per stage for these sizes at these rates: every text each stage embeds, every prompt
    it asks (a rejected answer is asked again, up to ``retries`` times), every step it trains."""
    from finetune.chunk import per_document_cap

    pool = min(sizes.max_chunks, rates.chunks_available(config.max_chunks_per_doc))
    cap = per_document_cap(pool, config.max_chunks_per_doc, rates.documents)
    documents_chunked = min(rates.documents, pool / max(rates.usable_per_document(cap), 1e-3))
    heldout = pool * config.heldout_fraction
    train = pool - heldout
    queries = min(sizes.max_queries, train)
    heldout_queries = min(sizes.max_heldout_queries, heldout)
    if not needs_llm(config.pair_sources):
        queries = heldout_queries = 0
    retry_factor = sum(rates.rejected_share ** i for i in range(config.retries + 1))
    per_prompt = 60.0 / rates.prompts_per_minute
    cloze = config.cloze_per_chunk * train + config.heldout_cloze_per_chunk * heldout
    all_queries = queries + heldout_queries + cloze + pool  # titles: at most one per chunk
    heldout_texts = heldout_queries + config.heldout_cloze_per_chunk * heldout + heldout
    models = 1 + math.ceil(sizes.steps / max(sizes.checkpoint_every, 1))
    per_model = rates.load_seconds + pool / rates.documents_per_second + heldout_texts / rates.queries_per_second
    guard = 2 * 2 * config.guard_pairs / rates.queries_per_second  # base and best, two sentences a pair
    return {
        "chunk": rates.read_seconds + documents_chunked * rates.seconds_per_document,
        "brainstorm": (rates.generator_load_seconds + config.brainstorm_calls * BRAINSTORM_PROMPT_COST * per_prompt
                       if queries + heldout_queries else 0.0),
        "generate": (queries + heldout_queries) * retry_factor * per_prompt,
        "filter": rates.load_seconds + pool / rates.documents_per_second + all_queries / rates.queries_per_second,
        "train": rates.load_seconds + sizes.steps * rates.seconds_per_step,
        "evaluate": models * per_model + guard,
        "other": FIXED_SECONDS,
    }


def _sizes_at(scale: float, explicit: dict[str, int], available: int, heldout_fraction: float) -> Sizes:
    planned = RECIPE.scaled(scale, FLOOR)
    values = {name: explicit.get(name, getattr(planned, name)) for name in PLANNED}
    if "max_chunks" not in explicit:
        values["max_chunks"] = max(4, min(values["max_chunks"], available))
    pool = values["max_chunks"]
    heldout = math.ceil(pool * heldout_fraction)
    for name, most in (("max_queries", pool - heldout + 1), ("max_heldout_queries", heldout + 1)):
        if name not in explicit:  # no more prompts than the pool has chunks to ask about
            values[name] = min(values[name], most)
    return Sizes(**values)


def choose_plan(budget_minutes: float, rates: Rates, config: DomainConfig, explicit: dict[str, int],
                max_scale: float = 1.0) -> Plan:
    """The largest scale of :data:`RECIPE` (at most ``max_scale``) whose expected minutes, probes
    included, fit :data:`SAFETY` of the budget; ``explicit`` settings keep their values."""
    if budget_minutes <= 0:
        raise BudgetError("--budget must be a positive number of minutes")
    target = SAFETY * budget_minutes * 60 - rates.probe_seconds
    available = rates.chunks_available(config.max_chunks_per_doc)

    def total(scale: float) -> float:
        sizes = _sizes_at(scale, explicit, available, config.heldout_fraction)
        return sum(expected_seconds(sizes, rates, config).values())

    low = min(f / r for f, r in zip(astuple(FLOOR), astuple(RECIPE), strict=True))  # below: every size at its floor
    max_scale = max(max_scale, low)
    reasons: list[str] = []
    if total(low) > target:
        scale = low
    elif total(max_scale) <= target:
        scale = max_scale
        reasons.append(f"the sizes stop at {max_scale:g}x the recipe (budget_max_scale): more data bought no "
                       "real-query gain (bench/RESULTS.md, \"The learning curve\")")
    else:
        lo, hi = low, max_scale
        for _ in range(30):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if total(mid) <= target else (lo, mid)
        scale = lo
    sizes = _sizes_at(scale, explicit, available, config.heldout_fraction)
    stages = expected_seconds(sizes, rates, config)
    expected = (sum(stages.values()) + rates.probe_seconds) / 60
    overrun = expected > budget_minutes
    if overrun:
        reasons.append(f"even the smallest run needs about {expected:.1f} min here: it will overrun the budget "
                       f"by {expected - budget_minutes:.1f} min (give --budget {math.ceil(expected / SAFETY)} or "
                       "a faster generator)")
    if sizes.max_chunks >= available and "max_chunks" not in explicit:
        reasons.append(f"the corpus gives about {available:,} chunks: the pool is all of it")
    asks = (f"answers {rates.prompts_per_minute:.1f} prompts/min ({rates.rejected_share:.0%} rejected), "
            if rates.prompts_per_minute < NO_LLM else "")
    reasons.append(f"this machine {asks}trains at {rates.seconds_per_step:.1f} s/step and embeds "
                   f"{rates.documents_per_second:.0f} chunks/s")
    kept = tuple(name for name in PLANNED if name in explicit)
    notes = (f"kept as given: {', '.join(f'{k}={explicit[k]}' for k in kept)}",) if kept else ()
    minutes = {k: round(v / 60, 2) for k, v in stages.items()}
    if rates.probe_seconds:
        minutes = {"measure": round(rates.probe_seconds / 60, 2), **minutes}
    return Plan(budget_minutes, sizes, round(scale, 3), kept, minutes, round(expected, 2), overrun,
                tuple(reasons), rates, notes)


def train_deadline_seconds(plan: Plan, spent_seconds: float) -> float:
    """Seconds the train stage may take from now: the budget less what was spent and what the stages
    after it are expected to need."""
    after = sum(plan.stage_minutes.get(k, 0.0) for k in ("evaluate", "other")) * 60
    allowed = max(plan.budget_minutes, plan.expected_minutes)  # a plan that overruns keeps to its own minutes
    return allowed * 60 - spent_seconds - after


# --- measuring (I/O) -------------------------------------------------------------------------------------

def _sample_chunks(config: DomainConfig) -> tuple[list, float, float, tuple[int, ...], int]:
    """Chunks of a random sample of documents, the seconds reading the corpus took, seconds per
    document chunked, the sample's chunks per document and the corpus' document count."""
    from corpora import CorpusError, load_corpus
    from finetune.chunk import base_tokenizer, chunk_config_for
    from indexing.chunking import chunk_documents, token_counter

    t0 = time.perf_counter()
    report = load_corpus(config.corpus)
    if not report.documents:
        raise CorpusError(f"no readable documents in {config.corpus}")
    read_seconds = time.perf_counter() - t0
    tokenizer, window = base_tokenizer(config.base)
    chunk_config = chunk_config_for(window, config.chunk_size)
    sample = random.Random(config.seed).sample(report.documents, min(PROBE_DOCUMENTS, len(report.documents)))
    tokenize = token_counter(tokenizer)
    chunks = [c for c in chunk_documents(sample[:1], chunk_config, tokenize) if c.text.strip()]  # first-call imports
    t0 = time.perf_counter()
    chunks += [c for c in chunk_documents(sample[1:], chunk_config, tokenize) if c.text.strip()]
    per_document = (time.perf_counter() - t0) / max(len(sample) - 1, 1)
    counts: dict[str, int] = {}
    for c in chunks:
        counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
    return chunks, read_seconds, per_document, tuple(counts.get(d.doc_id, 0) for d in sample), len(report.documents)


def _probe_generation(config: DomainConfig, chunks: list) -> tuple[float, float, float]:
    """Prompts per minute, rejected share and load seconds of the run's generator, on real prompts
    (not cached: a second plan measures again)."""
    from finetune.jsonrepair import OutputRejected
    from finetune.llm import open_generator
    from finetune.prompts import TEMPLATES, generation_messages
    from finetune.queries import attempt_config, check_answer
    from finetune.records import Task

    llm = open_generator(config, Path("/dev/null"))
    t0 = time.perf_counter()
    generator = llm.generator
    load = time.perf_counter() - t0
    task = Task("probe", "Given a question, retrieve a passage that answers it")
    picked = chunks[:PROBE_PROMPTS] if len(chunks) >= PROBE_PROMPTS else (chunks * PROBE_PROMPTS)[:PROBE_PROMPTS]
    prompts = [generation_messages(c.indexed_text, task, TEMPLATES[i % len(TEMPLATES)], config.passage_chars)
               for i, c in enumerate(picked)]
    t0 = time.perf_counter()
    answers = generator.generate_batch(prompts, attempt_config(config, 0))
    seconds = time.perf_counter() - t0
    rejected = 0
    for raw in answers:
        try:
            check_answer(raw)
        except OutputRejected:
            rejected += 1
    # a few prompts measure the share coarsely: keep it between what runs have shown (bench/RESULTS.md)
    share = min(0.6, max(0.1, rejected / len(answers)))
    return 60.0 * len(prompts) / max(seconds, 1e-6), share, load


def _probe_embedding_and_training(config: DomainConfig, chunks: list) -> tuple[float, float, float, float]:
    """Chunks/s and queries/s of the base, seconds per training step (the second of two real LoRA
    steps at the run's batch size, negatives included) and the base's load seconds."""
    import torch

    from embedder import load_embedder
    from finetune.lora import add_lora
    from finetune.records import TrainingExample
    from finetune.train import batch_loss, build_batch, gradient_checkpointing

    t0 = time.perf_counter()
    embedder = load_embedder(config.base, quantization=config.quantization, max_length=config.train_max_length,
                             backend="torch")
    load = time.perf_counter() - t0
    texts = [c.indexed_text for c in chunks] or ["a passage"]
    docs = (texts * math.ceil(32 / len(texts)))[:32]
    queries = [" ".join(t.split()[:12]) for t in docs]
    embedder.encode_documents(docs[:4])  # warm-up
    t0 = time.perf_counter()
    embedder.encode_documents(docs)
    documents_per_second = len(docs) / max(time.perf_counter() - t0, 1e-6)
    t0 = time.perf_counter()
    embedder.encode_queries(queries)
    queries_per_second = len(queries) / max(time.perf_counter() - t0, 1e-6)

    n = config.batch_size
    width = n * (1 + config.negatives_per_query)  # every positive and negative its own column, as in a run
    ids = [f"c{i}" for i in range(width)]
    by_id = {key: docs[i % len(docs)] for i, key in enumerate(ids)}
    examples = [TrainingExample(pair_id=f"p{i}", task_id="probe", instruction="", query=queries[i % len(queries)],
                                positive_id=ids[i],
                                negative_ids=tuple(ids[n + i * config.negatives_per_query + j]
                                                   for j in range(config.negatives_per_query)))
                for i in range(n)]
    checkpointing = gradient_checkpointing(config, embedder)
    quantized = embedder.loaded_from.quantization == "nf4"
    embedder.model = add_lora(embedder.model, config.lora_r, config.lora_alpha, config.lora_dropout, quantized,
                              checkpointing)
    params = [p for p in embedder.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate)
    embedder.model.train()
    temperature = config.resolved_temperature(embedder.spec.pooling)
    step_seconds = []
    for _ in range(2):
        t0 = time.perf_counter()
        loss = batch_loss(embedder, build_batch(embedder, examples, by_id), temperature, config.distill_weight)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step_seconds.append(time.perf_counter() - t0)
    return documents_per_second, queries_per_second, step_seconds[-1], load


def measure_rates(config: DomainConfig) -> Rates:
    t0 = time.perf_counter()
    chunks, read_seconds, per_document, counts, documents = _sample_chunks(config)
    if needs_llm(config.pair_sources):
        prompts_per_minute, rejected, generator_load = _probe_generation(config, chunks)
    else:  # no generated queries: no generator to load or measure
        prompts_per_minute, rejected, generator_load = NO_LLM, 0.1, 0.0
    documents_per_second, queries_per_second, step, load = _probe_embedding_and_training(config, chunks)
    return Rates(round(prompts_per_minute, 2), round(rejected, 3), round(step, 3), round(documents_per_second, 1),
                 round(queries_per_second, 1), round(load, 2), round(generator_load, 2), round(read_seconds, 2),
                 round(per_document, 4), documents, counts, round(time.perf_counter() - t0, 1))


# --- the run's plan file -------------------------------------------------------------------------------

PLAN_FILE = "plan.json"


def plan_for(config: DomainConfig, explicit: dict[str, int], measure=None) -> Plan:
    """The run's plan: the saved one when the budget, the explicit settings and the cap are those it
    was made for (a resumed run does not measure again), else a new one, saved."""
    path = Path(config.run_dir) / PLAN_FILE
    try:
        saved = read_json(path)
        plan = Plan.from_json(saved["plan"]) if saved else None
    except (ValueError, KeyError, TypeError) as error:  # an unreadable plan is made again, not fatal
        log.warning("%s cannot be read (%s): measuring again", path, error)
        saved, plan = None, None
    if saved and plan and (saved.get("budget") == config.budget and saved.get("explicit") == explicit
                           and saved.get("max_scale") == config.budget_max_scale):
        return plan
    rates = (measure or measure_rates)(config)
    plan = choose_plan(config.budget, rates, config, explicit, config.budget_max_scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"budget": config.budget, "explicit": explicit, "max_scale": config.budget_max_scale,
                             "plan": plan.to_json()})
    return plan
