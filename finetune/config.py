"""Every knob of a domain-adaptation run in one dataclass, loadable from a JSON or TOML file.

Precedence: defaults < config file < command-line flags. The resolved config is saved in the run
directory (``config.json``) so a resumed run uses what the first one used.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from finetune.rundir import STAGES
from finetune.sources import check_pair_sources, default_pair_sources
from linqrag.errors import ConfigError
from linqrag.generation import GENERATOR_KINDS

#: Temperatures: E5-mistral / Linq train 7B decoders at 0.02; sentence-transformers' encoders
#: (MiniLM) were trained at a scale of 20, i.e. 0.05, and fit noisy labels too hard at 0.02.
DECODER_TEMPERATURE = 0.02
ENCODER_TEMPERATURE = 0.05


def setting(stage: str | None, default=MISSING, *, default_factory=MISSING, train_fingerprint: int | None = None):
    """A :class:`DomainConfig` field marked with what it affects (``dataclasses.fields`` reads it back):

    - ``stage``: the earliest stage (of ``STAGES``) whose output the setting changes, so changing it on
      a finished run means redoing from there; ``None`` for a setting that changes no output (where
      files go, threads, time limits, batch sizes of the generator);
    - ``train_fingerprint``: its position in the training setup a resumed training must match (the
      order is part of the hash written into checkpoints, so it is kept, not derived).
    """
    if stage is not None and stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; known: {STAGES}")
    metadata = {"stage": stage, "train_fingerprint": train_fingerprint}
    return field(default=default, default_factory=default_factory, metadata=metadata)


@dataclass
class DomainConfig:
    # --- what and where
    corpus: str = setting("chunk", "")
    run_dir: str = setting(None, "")
    base: str = setting("chunk", "minilm", train_fingerprint=0)  #: embedder preset, hub id or path to adapt
    #: Filters pairs, mines negatives, gives soft labels: "bm25+NAME" (fused, the default: not the
    #: base), an embedder name alone, or "bm25".
    teacher: str = setting("filter", "bm25+minilm")
    seed: int = setting("chunk", 13, train_fingerprint=10)
    threads: int | None = setting(None, None)  #: torch CPU threads (1 is fastest on a busy shared CPU)
    #: minutes the run may take: it measures this machine first and sizes the pool, the LLM prompts and
    #: the steps to fit (``finetune.budget``); 0: the sizes as set. Explicit sizes win.
    budget: float = setting(None, 60.0)
    #: the budget never grows the sizes past this multiple of the recipe (``finetune.budget.RECIPE``)
    budget_max_scale: float = setting(None, 1.0)

    # --- 1. chunk
    max_chunks: int = setting("chunk", 1200)  #: chunk pool the run works on (sampled from the corpus)
    #: so long documents cannot fill the pool alone; fewer when the corpus has documents enough
    #: (``finetune.chunk.per_document_cap``: 1 on a corpus of more documents than ``max_chunks``)
    max_chunks_per_doc: int = setting("chunk", 4)
    #: tokens; default: ``finetune.chunk.DEFAULT_MAX_CHUNK_TOKENS``, or what fits the base if that is less
    chunk_size: int | None = setting("chunk", None)
    heldout_fraction: float = setting("chunk", 0.2)  #: share of chunks whose queries only evaluate

    # --- 2-3. generator
    generator: str = setting("brainstorm", "local")  #: one of ``GENERATOR_KINDS``
    #: local: smollm2 / hub id / path; openai: the model name
    generator_model: str | None = setting("brainstorm", None)
    base_url: str | None = setting("brainstorm", None)
    api_key_env: str = setting(None, "OPENAI_API_KEY")
    generator_deadline: float = setting(None, 300.0)  #: seconds one endpoint request may take, retries included
    generation_cache: str | None = setting(None, None)  #: share LLM outputs across runs (default: inside the run dir)
    generator_batch_size: int = setting(None, 32)
    brainstorm_calls: int = setting("brainstorm", 4)
    brainstorm_passages: int = setting("brainstorm", 3)
    max_tasks: int = setting("brainstorm", 6)
    #: Where training pairs come from: names of :data:`finetune.sources.PAIR_SOURCES` ("llm": generated
    #: queries, "title": title -> body, "cloze": a sentence -> the rest of its chunk; default: those
    #: registered as default). Each source is a task of the batch schedule.
    pair_sources: tuple[str, ...] = setting("generate", default_factory=default_pair_sources)
    cloze_per_chunk: int = setting("generate", 2)  #: cloze pairs cut from each pool chunk
    #: training chunks of the pool that get an LLM query (None: every one; the LLM is the cost)
    max_queries: int | None = setting("generate", 240)
    #: held-out chunks that get an LLM query: the selection's test of generated queries (None: every one)
    max_heldout_queries: int | None = setting("generate", 120)
    heldout_cloze_per_chunk: int = setting("generate", 4)  #: cloze queries per held-out chunk (cheap test power)
    passage_chars: int = setting("generate", 700)  #: chunk text shown to the generator
    max_new_tokens: int = setting("generate", 80)
    temperature: float = setting("brainstorm", 0.6)
    top_p: float = setting("brainstorm", 0.9)
    retries: int = setting("generate", 2)  #: extra attempts for a chunk whose output was rejected

    # --- 4. filter
    min_query_words: int = setting("filter", 3)
    max_query_words: int = setting("filter", 48)
    #: word-set Jaccard at or above which a query is a near-duplicate
    near_duplicate_jaccard: float = setting("filter", 0.8)
    #: share of a query's word 4-grams found in its chunk at which it is a copy
    copy_overlap: float = setting("filter", 0.8)
    teacher_top_k: int = setting("filter", 20)  #: the positive must be in the teacher's top k (0 turns the rule off)

    # --- 5. mine
    negatives_per_query: int = setting("mine", 2)
    mine_rank_start: int = setting("mine", 3)  #: rank window (1-based, positive excluded) negatives are sampled from
    mine_rank_end: int = setting("mine", 30)
    #: skip candidates scoring above this share of the positive's score
    false_negative_margin: float = setting("mine", 0.95)

    # --- 6. train
    steps: int = setting("train", 60)
    batch_size: int = setting("train", 16)
    learning_rate: float = setting("train", 2e-4, train_fingerprint=2)
    warmup_steps: int = setting("train", 5, train_fingerprint=3)
    weight_decay: float = setting("train", 0.0, train_fingerprint=4)
    #: InfoNCE temperature; None picks by base: the recipe's value for decoders, the encoder's own
    #: training scale for mean-pooling encoders (see ``resolved_temperature``).
    temperature_loss: float | None = setting("train", None, train_fingerprint=5)
    #: Weight of the MarginMSE soft-label loss (the teacher's margins) beside InfoNCE; 0 turns it off.
    distill_weight: float = setting("train", 0.1, train_fingerprint=11)
    lora_r: int = setting("train", 16, train_fingerprint=6)
    lora_alpha: int = setting("train", 32, train_fingerprint=7)
    lora_dropout: float = setting("train", 0.05, train_fingerprint=8)
    mixed_steps: int = setting("train", 10)  #: final mixed-task steps (<= 20, after the homogeneous phase)
    checkpoint_every: int = setting("train", 20)
    #: None: on for decoder bases and any base of 1B parameters or more (activation memory), off for
    #: small encoders (it costs a second forward)
    gradient_checkpointing: bool | None = setting("train", None)
    quantization: str = setting("train", "auto", train_fingerprint=1)  #: "nf4" trains QLoRA on a 4-bit base
    #: token cap for training inputs (default: the base's window)
    train_max_length: int | None = setting("train", None, train_fingerprint=9)

    # --- 7. evaluate
    eval_k: int = setting("evaluate", 10)
    #: also score the base and the best checkpoint on this eval/ suite ("streamlined")
    eval_suite: str | None = setting("evaluate", None)
    bootstrap_resamples: int = setting("evaluate", 2000)  #: paired bootstrap of the held-out gain
    guard_pairs: int = setting("evaluate", 500)  #: STS-B sentence pairs of the out-of-domain guard (0 turns it off)
    #: a checkpoint losing more Spearman than this on the guard is refused
    guard_max_drop: float = setting("evaluate", 0.01)
    extra: dict = setting(None, default_factory=dict)

    def __post_init__(self) -> None:
        check_types(self)
        if self.budget < 0:
            raise ConfigError("budget must be 0 (no budget) or a positive number of minutes")
        if self.budget_max_scale <= 0:
            raise ConfigError("budget_max_scale must be positive")
        if not 0 <= self.heldout_fraction < 1:
            raise ConfigError("heldout_fraction must be in [0, 1)")
        if self.mixed_steps > 20:
            raise ConfigError("mixed_steps must be <= 20 (the Linq recipe keeps the mixed phase short)")
        if self.mine_rank_start < 1 or self.mine_rank_end < self.mine_rank_start:
            raise ConfigError("mining window must satisfy 1 <= mine_rank_start <= mine_rank_end")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be >= 2 (in-batch negatives)")
        if self.generator not in GENERATOR_KINDS:
            raise ConfigError(f"generator must be {' or '.join(repr(k) for k in GENERATOR_KINDS)}")
        self.pair_sources = check_pair_sources(self.pair_sources)
        self._check_settings_used_elsewhere()

    def _check_settings_used_elsewhere(self) -> None:
        """Settings that the generator and the embedder loader check: refused here, as a bad setting,
        not stages later as an error of the library that reads them."""
        from linqrag.generation import GenerationConfig

        try:
            GenerationConfig(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p)
        except ValueError as error:
            raise ConfigError(str(error)) from error
        if self.quantization != "auto":  # the loader (and torch) load only for a non-default choice
            from embedder.spec import QUANTIZATION_CHOICES

            if self.quantization not in QUANTIZATION_CHOICES:
                raise ConfigError(f"quantization must be one of {QUANTIZATION_CHOICES}, got {self.quantization!r}")

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def from_file(cls, path: str | Path) -> dict:
        """Settings from a ``.json`` or ``.toml`` file (a flat table of field names), validated."""
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        try:
            if path.suffix == ".toml":
                import tomllib

                data = tomllib.loads(path.read_text(encoding="utf-8"))
            else:
                data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:  # TOMLDecodeError and JSONDecodeError are ValueErrors
            kind = "TOML" if path.suffix == ".toml" else "JSON"
            raise ConfigError(f"config file {path} is not valid {kind}: {error}") from error
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a table of settings, not {type(data).__name__}")
        unknown = set(data) - cls.field_names()
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {sorted(unknown)}; known: {sorted(cls.field_names())}")
        return data

    def to_json(self) -> dict:
        return asdict(self)

    def resolved_temperature(self, pooling: str) -> float:
        """The InfoNCE temperature for a base with this pooling (an explicit setting wins)."""
        if self.temperature_loss is not None:
            return self.temperature_loss
        return DECODER_TEMPERATURE if pooling == "last" else ENCODER_TEMPERATURE


#: The earliest stage each setting feeds: changing it on a finished run means redoing from there.
FIELD_STAGE: dict[str, str] = {f.name: f.metadata["stage"] for f in fields(DomainConfig) if f.metadata["stage"]}
#: Settings of the training setup a resume must match, in their fingerprint order.
TRAIN_FINGERPRINT_KEYS: tuple[str, ...] = tuple(
    f.name for f in sorted((f for f in fields(DomainConfig) if f.metadata["train_fingerprint"] is not None),
                           key=lambda f: f.metadata["train_fingerprint"]))


def _fits(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list) or hint in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return False
        return all(_fits(v, args[0]) for v in value) if args else True
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True  # a type this check does not know: leave it to the field's own validation


def check_types(config) -> None:
    """Refuse a setting of the wrong type when the config is made (``steps = "three"`` used to fail
    five stages later), naming the setting, what it must be and what it got."""
    hints = typing.get_type_hints(type(config))
    for f in fields(config):
        value = getattr(config, f.name)
        if not _fits(value, hints[f.name]):
            want = getattr(hints[f.name], "__name__", str(hints[f.name]))
            raise ConfigError(f"setting {f.name} must be {want}, got {value!r}")
        if hints[f.name] is float and isinstance(value, int):
            object.__setattr__(config, f.name, float(value))
