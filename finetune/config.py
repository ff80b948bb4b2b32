"""Every knob of a domain-adaptation run in one dataclass, loadable from a JSON or TOML file.

Precedence: defaults < config file < command-line flags. The resolved config is saved in the run
directory (``config.json``) so a resumed run uses what the first one used.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

#: Every pair source the generate stage knows.
PAIR_SOURCES = ("llm", "title", "cloze")
#: Temperatures: E5-mistral / Linq train 7B decoders at 0.02; sentence-transformers' encoders
#: (MiniLM) were trained at a scale of 20, i.e. 0.05, and fit noisy labels too hard at 0.02.
DECODER_TEMPERATURE = 0.02
ENCODER_TEMPERATURE = 0.05


@dataclass
class DomainConfig:
    # --- what and where
    corpus: str = ""
    run_dir: str = ""
    base: str = "minilm"  #: embedder preset, hub id or path to adapt
    #: Filters pairs, mines negatives, gives soft labels: "bm25+NAME" (fused, the default: not the
    #: base), an embedder name alone, or "bm25".
    teacher: str = "bm25+minilm"
    seed: int = 13
    threads: int | None = None  #: torch CPU threads (1 is fastest on a busy shared CPU)

    # --- 1. chunk
    max_chunks: int = 1200  #: chunk pool the run works on (sampled from the corpus)
    max_chunks_per_doc: int = 4  #: so long documents cannot fill the pool alone
    chunk_size: int | None = None  #: tokens; default min(128, what fits the base)
    heldout_fraction: float = 0.2  #: share of chunks whose queries only evaluate

    # --- 2-3. generator
    generator: str = "local"  #: "local" or "openai"
    generator_model: str | None = None  #: local: smollm2 / hub id / path; openai: the model name
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    generator_deadline: float = 300.0  #: seconds one endpoint request may take, retries included
    generation_cache: str | None = None  #: share LLM outputs across runs (default: inside the run dir)
    generator_batch_size: int = 8
    brainstorm_calls: int = 4
    brainstorm_passages: int = 3
    max_tasks: int = 6
    #: Where training pairs come from: "llm" (generated queries), "title" (title -> body), "cloze"
    #: (a sentence -> the rest of its chunk). Each source is a task of the batch schedule.
    pair_sources: tuple[str, ...] = ("llm", "title", "cloze")
    cloze_per_chunk: int = 2  #: cloze pairs cut from each pool chunk
    max_queries: int | None = 240  #: pool chunks that get an LLM query (None: every chunk; the LLM is the cost)
    passage_chars: int = 700  #: chunk text shown to the generator
    max_new_tokens: int = 80
    temperature: float = 0.6
    top_p: float = 0.9
    retries: int = 2  #: extra attempts for a chunk whose output was rejected

    # --- 4. filter
    min_query_words: int = 3
    max_query_words: int = 48
    near_duplicate_jaccard: float = 0.8  #: word-set Jaccard at or above which a query is a near-duplicate
    copy_overlap: float = 0.8  #: share of a query's word 4-grams found in its chunk at which it is a copy
    teacher_top_k: int = 20  #: the positive must be in the teacher's top k (0 turns the rule off)

    # --- 5. mine
    negatives_per_query: int = 2
    mine_rank_start: int = 3  #: rank window (1-based, positive excluded) negatives are sampled from
    mine_rank_end: int = 30
    false_negative_margin: float = 0.95  #: skip candidates scoring above this share of the positive's score

    # --- 6. train
    steps: int = 60
    batch_size: int = 16
    learning_rate: float = 2e-4
    warmup_steps: int = 5
    weight_decay: float = 0.0
    #: InfoNCE temperature; None picks by base: the recipe's value for decoders, the encoder's own
    #: training scale for mean-pooling encoders (see ``resolved_temperature``).
    temperature_loss: float | None = None
    #: Weight of the MarginMSE soft-label loss (the teacher's margins) beside InfoNCE; 0 turns it off.
    distill_weight: float = 0.1
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    mixed_steps: int = 10  #: final mixed-task steps (<= 20, after the homogeneous phase)
    checkpoint_every: int = 20
    #: None: on for decoder bases and any base of 1B parameters or more (activation memory), off for
    #: small encoders (it costs a second forward)
    gradient_checkpointing: bool | None = None
    quantization: str = "auto"  #: "nf4" trains QLoRA on a 4-bit base
    train_max_length: int | None = None  #: token cap for training inputs (default: the base's window)

    # --- 7. evaluate
    eval_k: int = 10
    eval_suite: str | None = None  #: also score the base and the best checkpoint on this eval/ suite ("streamlined")
    bootstrap_resamples: int = 2000  #: paired bootstrap of the held-out gain
    guard_pairs: int = 500  #: STS-B sentence pairs of the out-of-domain guard (0 turns it off)
    guard_max_drop: float = 0.01  #: a checkpoint losing more Spearman than this on the guard is refused
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_types(self)
        if not 0 <= self.heldout_fraction < 1:
            raise ValueError("heldout_fraction must be in [0, 1)")
        if self.mixed_steps > 20:
            raise ValueError("mixed_steps must be <= 20 (the Linq recipe keeps the mixed phase short)")
        if self.mine_rank_start < 1 or self.mine_rank_end < self.mine_rank_start:
            raise ValueError("mining window must satisfy 1 <= mine_rank_start <= mine_rank_end")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (in-batch negatives)")
        if self.generator not in ("local", "openai"):
            raise ValueError("generator must be 'local' or 'openai'")
        self.pair_sources = tuple(self.pair_sources)
        unknown = set(self.pair_sources) - set(PAIR_SOURCES)
        if unknown or not self.pair_sources:
            raise ValueError(f"pair_sources must be a non-empty subset of {PAIR_SOURCES}; got {self.pair_sources}")

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def from_file(cls, path: str | Path) -> dict:
        """Settings from a ``.json`` or ``.toml`` file (a flat table of field names), validated."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"config file {path} does not exist")
        try:
            if path.suffix == ".toml":
                import tomllib

                data = tomllib.loads(path.read_text(encoding="utf-8"))
            else:
                data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:  # TOMLDecodeError and JSONDecodeError are ValueErrors
            raise ValueError(f"config file {path} is not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {error}") from error
        if not isinstance(data, dict):
            raise ValueError(f"config file {path} must hold a table of settings, not {type(data).__name__}")  # noqa: TRY004 (a bad file, reported as the CLI reports every bad setting)
        unknown = set(data) - cls.field_names()
        if unknown:
            raise ValueError(f"{path}: unknown setting(s) {sorted(unknown)}; known: {sorted(cls.field_names())}")
        return data

    def to_json(self) -> dict:
        return asdict(self)

    def resolved_temperature(self, pooling: str) -> float:
        """The InfoNCE temperature for a base with this pooling (an explicit setting wins)."""
        if self.temperature_loss is not None:
            return self.temperature_loss
        return DECODER_TEMPERATURE if pooling == "last" else ENCODER_TEMPERATURE

    def generation_fingerprint(self) -> dict:
        """Settings that change what the generator is asked (cached outputs stay valid otherwise)."""
        keys = ("generator", "generator_model", "base_url", "passage_chars", "max_new_tokens", "temperature", "top_p")
        return {k: getattr(self, k) for k in keys}


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
        return isinstance(value, (tuple, list)) and all(_fits(v, args[0]) for v in value) if args else isinstance(value, (tuple, list))
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
            raise ValueError(f"setting {f.name} must be {want}, got {value!r}")
        if hints[f.name] is float and isinstance(value, int):
            object.__setattr__(config, f.name, float(value))
