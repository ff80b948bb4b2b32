"""Domain adaptation of embedders (the E5-mistral / Linq recipe on your own documents).

    python -m finetune.domain --corpus DIR          # the whole pipeline, resumable
    python -m finetune domain --corpus DIR          # the same (``finetune.cli``: domain, export)

    from finetune import DomainConfig, run_domain_adaptation
    result = run_domain_adaptation(DomainConfig(corpus="docs/", run_dir="runs/docs"))
    result.best_checkpoint                           # a PEFT adapter: load_embedder(base, adapter=...)

One module per stage: ``chunk``, ``brainstorm``, ``generate`` (with ``prompts``, ``jsonrepair``,
``llm``), ``filters``, ``mining`` (with ``teacher``), ``train`` (with ``losses``, ``batching``,
``lora``), ``evaluate``, ``report``; each reads its inputs through ``rundir.RunDir``. ``domain``
runs them in order (its stage table); ``cli`` holds the commands (``domain``, ``export``).
"""

from finetune.config import DomainConfig
from finetune.rundir import STAGES, RunDir, RunDirError

__all__ = ["STAGES", "DomainConfig", "RunDir", "RunDirError", "RunResult", "run_domain_adaptation"]


def __getattr__(name: str):
    # torch and transformers load only when a run starts
    if name in ("run_domain_adaptation", "RunResult", "resolve_config"):
        from finetune import domain

        return getattr(domain, name)
    raise AttributeError(name)
