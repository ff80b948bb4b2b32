"""``python -m finetune``: adapt an embedder to your documents (``domain``) and merge an adapter into
its base for serving engines (``export``).

``python -m finetune.domain ...`` and ``python -m finetune.export ...`` are the same subcommands
with the same flags. Problems the user can fix (:class:`~linqrag.errors.LinqragError`: a corpus
that cannot be read, a bad setting, a missing earlier stage, a model that is not here) print one
``error:`` line and exit 2 (:func:`linqrag.errors.run_parser`); anything else is a bug and shows its
traceback.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from finetune.config import DomainConfig
from finetune.rundir import STAGES
from finetune.sources import check_pair_sources, default_pair_sources, sources_help
from linqrag.errors import ConfigError, run_parser
from linqrag.generation import GENERATOR_KINDS


def _pair_sources(text: str) -> tuple[str, ...]:
    """``--sources``: comma-separated names of registered pair sources."""
    try:
        return check_pair_sources(s.strip() for s in text.split(",") if s.strip())
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _minutes(text: str) -> float:
    """``--budget``: minutes (0: none)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"minutes must be a number, got {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"minutes must be 0 (no budget) or more, got {text!r}")
    return value


def add_domain_arguments(p: argparse.ArgumentParser) -> None:
    """The pipeline's flags; each is a :class:`DomainConfig` setting (defaults: its defaults)."""
    from embedder.presets import PRESETS

    d = DomainConfig
    p.add_argument("--corpus", metavar="DIR",
                   help="directory of documents (txt, md, html, pdf, jsonl) or a BEIR folder (only its corpus is read)")
    p.add_argument("--base", metavar="NAME",
                   help=f"embedder to adapt: a preset ({', '.join(PRESETS)}; default {d.base}), a hub id or a path")
    p.add_argument("--generator", choices=GENERATOR_KINDS,
                   help=f"local HF model or an OpenAI-compatible endpoint (default {d.generator})")
    p.add_argument("--generator-model", dest="generator_model", metavar="NAME",
                   help="local: smollm2 (default), a hub id or a path; openai: the model name")
    p.add_argument("--base-url", dest="base_url", metavar="URL",
                   help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    p.add_argument("--api-key-env", dest="api_key_env", metavar="VAR",
                   help=f"environment variable holding the endpoint's key (default {d.api_key_env}; '' for none)")
    p.add_argument("--teacher", metavar="NAME",
                   help=f"filters pairs, mines negatives, gives soft labels: bm25+NAME (BM25 fused with an embedder; "
                   f"default {d.teacher}), an embedder name alone, or bm25")
    p.add_argument("--sources", dest="pair_sources", type=_pair_sources, metavar="LIST",
                   help=f"comma-separated pair sources: {sources_help()}; default {','.join(default_pair_sources())}")
    p.add_argument("--max-queries", dest="max_queries", type=int, metavar="N",
                   help=f"training chunks that get an LLM query (default {d.max_queries}: the generator is the cost; "
                   f"held-out chunks get {d.max_heldout_queries}, max_heldout_queries in a config file)")
    p.add_argument("--run-dir", dest="run_dir", metavar="DIR",
                   help="where the run lives (default runs/<corpus>-<base>)")
    p.add_argument("--max-chunks", dest="max_chunks", type=int, metavar="N",
                   help=f"size of the chunk pool (default {d.max_chunks})")
    p.add_argument("--budget", type=_minutes, metavar="MINUTES",
                   help=f"minutes the run may take (default {d.budget:g}): it measures this machine's generation "
                   "and training speed first, sizes the pool, LLM prompts and steps to fit, prints its plan, and "
                   "stops training at the deadline; explicit sizes win; 0: no budget, the sizes as set")
    p.add_argument("--steps", type=int, metavar="N", help=f"training steps (default {d.steps})")
    p.add_argument("--batch-size", dest="batch_size", type=int, metavar="N",
                   help=f"training batch size (default {d.batch_size})")
    p.add_argument("--from-stage", dest="from_stage", choices=STAGES, metavar="STAGE",
                   help=f"redo this stage and all later ones ({', '.join(STAGES)})")
    p.add_argument("--config", metavar="FILE", help="JSON or TOML file with any DomainConfig settings")
    p.add_argument("--generation-cache", dest="generation_cache", metavar="FILE",
                   help="JSON-lines file of LLM answers shared between runs (default: inside the run dir)")
    p.add_argument("--eval-suite", dest="eval_suite", metavar="SUITE",
                   help="also score the base and the best checkpoint on an eval/ suite, e.g. streamlined (slow)")
    p.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (1 is fastest on a busy shared CPU)")
    p.add_argument("--seed", type=int, metavar="N", help=f"seed of every sampling step (default {d.seed})")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--adapter", required=True, type=Path, metavar="DIR",
                   help="a checkpoint directory of a finetune run")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory for the merged model")
    p.add_argument("--base", metavar="NAME", help="base preset, hub id or path (default: the one the adapter records)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")


DOMAIN_DESCRIPTION = ("Adapt an embedder to a document collection: synthetic queries from a generator LLM, "
                      "teacher filtering and hard-negative mining, LoRA contrastive training, evaluation on "
                      "held-out synthetic queries. Rerun the same command to resume a stopped run.")
DOMAIN_EPILOG = ("Every DomainConfig field can be set in a JSON or TOML file (--config); flags win over the file. "
                 f"Stages: {', '.join(STAGES)}.")
EXPORT_DESCRIPTION = ("Merge a LoRA adapter into its base and save a plain transformers / sentence-transformers "
                      "model that vLLM, TEI or SentenceTransformer(DIR) can serve.")


def run_domain(args: argparse.Namespace) -> int:
    from finetune.distributed import ranks
    from finetune.domain import plan_run, run_domain_adaptation
    from linqrag.settings import apply_offline_env

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    apply_offline_env()
    overrides = {k: v for k, v in vars(args).items() if k in DomainConfig.field_names()}
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # the budget measures at the run's thread count
    config, plan = plan_run(overrides, args.config, args.from_stage,
                            show=lambda text: print(text, flush=True))
    result = run_domain_adaptation(config, args.from_stage, show_progress=not args.quiet, plan=plan)
    if ranks().main:  # under torchrun, one summary
        print(result.summary_line())
    return 0


def run_export(args: argparse.Namespace) -> int:
    from finetune.export import export_adapter
    from linqrag.settings import apply_offline_env

    apply_offline_env()
    report = export_adapter(args.adapter, args.out, args.base, args.overwrite)
    print(f"exported {args.adapter} merged into {report.base_model} ({report.pooling} pooling, window "
          f"{report.max_length}) -> {report.out}")
    for note in report.notes:
        print(f"note: {note}")
    return 0


@dataclass(frozen=True)
class Command:
    """One subcommand: its flags, what it does, and its line in ``--help``."""

    name: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    summary: str
    description: str
    epilog: str | None = None


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("domain", add_domain_arguments, run_domain, "adapt an embedder to a document collection (resumable)",
            DOMAIN_DESCRIPTION, DOMAIN_EPILOG),
    Command("export", add_export_arguments, run_export, "merge a LoRA adapter into its base for serving engines",
            EXPORT_DESCRIPTION),
)}


def _configure(p: argparse.ArgumentParser, command: Command) -> argparse.ArgumentParser:
    command.add_arguments(p)
    p.set_defaults(func=command.run)
    return p


def command_parser(name: str) -> argparse.ArgumentParser:
    """One subcommand as a parser of its own (``python -m finetune.domain`` / ``finetune.export``)."""
    command = COMMANDS[name]
    return _configure(argparse.ArgumentParser(prog=f"python -m finetune.{name}", description=command.description,
                                              epilog=command.epilog), command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m finetune", description="Domain adaptation of embedders.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        _configure(sub.add_parser(command.name, help=command.summary, description=command.description,
                                  epilog=command.epilog), command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m finetune COMMAND ...``"""
    return run_parser(build_parser, argv)


def domain_main(argv: Sequence[str] | None = None) -> int:
    """``python -m finetune.domain ...``"""
    return run_parser(partial(command_parser, "domain"), argv)


def export_main(argv: Sequence[str] | None = None) -> int:
    """``python -m finetune.export ...``"""
    return run_parser(partial(command_parser, "export"), argv)
