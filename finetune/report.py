"""The run's report: ``report.json`` (everything), ``report.md`` (for people), ``loss.png`` and
``metrics.png``. The app reads ``report.json`` to offer the best checkpoint."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from finetune.config import DomainConfig
from finetune.rundir import RunDir, iter_jsonl, read_json
from linqrag.files import write_json_atomic


@contextmanager
def _figure(path: Path, xlabel: str, ylabel: str):
    """A headless line plot saved to ``path`` when the block ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    try:
        yield ax
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def plot_loss(losses: list[dict], path: Path) -> None:
    with _figure(path, "step", "InfoNCE loss") as ax:
        train = [r for r in losses if "loss" in r]
        if train:
            ax.plot([r["step"] for r in train], [r["loss"] for r in train], lw=1, alpha=0.6, label="batch loss")
            mixed = [r["step"] for r in train if r.get("phase") == "mixed"]
            if mixed:
                ax.axvspan(min(mixed) - 0.5, max(mixed) + 0.5, color="grey", alpha=0.15, label="mixed-task phase")
        probe = [r for r in losses if r.get("probe_loss") is not None]
        if probe:
            ax.plot([r["step"] for r in probe], [r["probe_loss"] for r in probe], "o-", label="probe batch (fixed)")


def plot_metrics(rows: list[dict], metric_names: list[str], path: Path) -> None:
    with _figure(path, "step (0 = base)", "held-out synthetic queries") as ax:
        for name in metric_names:
            ax.plot([r["step"] for r in rows], [r[name] for r in rows], "o-", label=name)


def _table(rows: list[dict], columns: list[str]) -> list[str]:
    out = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |")
    return out


def run_report_stage(config: DomainConfig, run: RunDir) -> dict:
    ledger = run.done()
    evaluation = read_json(run.path("evaluation.json"), {})
    losses = list(iter_jsonl(run.losses))
    rows = evaluation.get("rows", [])
    metric = evaluation.get("metric", f"ndcg@{config.eval_k}")
    best = evaluation.get("best")
    report = {
        "run_dir": str(run.root.resolve()),
        "config": config.to_json(),
        "stages": ledger,
        "evaluation": evaluation,
        "best_checkpoint": best.get("path") if best else None,
        "base": config.base,
        "gain": evaluation.get("gain"),
        "recommended": evaluation.get("recommended"),
        "verdict": evaluation.get("verdict"),
    }
    plots = []
    if losses:
        plot_loss(losses, run.path("loss.png"))
        plots.append("loss.png")
    if rows:
        plot_metrics(rows, [metric, f"recall@{config.eval_k}"], run.path("metrics.png"))
        plots.append("metrics.png")
    report["plots"] = plots
    write_json_atomic(run.path("report.json"), report)
    run.path("report.md").write_text(markdown(report), encoding="utf-8")
    run.mark_done("report", {"best_checkpoint": report["best_checkpoint"], "gain": report["gain"]})
    return report


def markdown(report: dict) -> str:
    cfg, stages, ev = report["config"], report["stages"], report.get("evaluation", {})
    lines = [f"# Domain adaptation: {Path(cfg['corpus']).name or cfg['corpus']} -> {cfg['base']}", ""]
    chunk = stages.get("chunk", {})
    lines += [(f"Corpus `{cfg['corpus']}`: {chunk.get('documents')} documents, pool of {chunk.get('chunks')} chunks "
              f"({chunk.get('train_chunks')} train, {chunk.get('heldout_chunks')} held out), "
              f"{chunk.get('chunk_size')} tokens each at most."), ""]
    brainstorm = stages.get("brainstorm", {})
    if brainstorm:
        lines += ["## Tasks (brainstorm)", ""] + [f"- {t}" for t in brainstorm.get("task_list", [])]
        if brainstorm.get("rejected"):
            lines += ["", f"Rejected proposals: {brainstorm['rejected']}"]
        lines += [""]
    gen = stages.get("generate", {})
    if gen:
        lines += ["## Generation", "",
                  (f"{gen.get('pairs')} pairs (by source: {gen.get('by_source')}); {gen.get('chunks', 0)} chunks "
                  f"asked of the LLM ({gen.get('with_hard_negative')} with an LLM hard negative); "
                  f"{gen.get('repaired', 0)} answers repaired, {gen.get('rejected_outputs')} rejected, "
                  f"{gen.get('gave_up_chunks', 0)} chunks given up after retries. "
                  f"Generator speed: {gen.get('queries_per_minute')} answers/min (uncached only)."), ""]
        if gen.get("rejected_by_reason"):
            lines += _table([{"reason": k, "count": v} for k, v in gen["rejected_by_reason"].items()],
                            ["reason", "count"]) + [""]
    filt = stages.get("filter", {})
    if filt:
        lines += ["## Filter", "", (f"{filt.get('input')} in, {filt.get('kept')} kept "
                  f"({filt.get('train_kept')} train, {filt.get('heldout_kept')} held out).")] + [""]
        lines += _table([{"rule": k, "removed": v} for k, v in filt.get("removed_by_rule", {}).items()],
                        ["rule", "removed"]) + [""]
    mine = stages.get("mine", {})
    if mine:
        lines += ["## Hard negatives", "", (f"{mine.get('examples')} training examples, "
                  f"{mine.get('mined_negatives')} mined "
                  f"negatives from ranks {mine.get('window')}, {mine.get('false_negatives_skipped')} likely false "
                  f"negatives skipped (score > {mine.get('margin')} x positive), {mine.get('with_llm_negative')} LLM "
                  f"negatives kept ({mine.get('llm_negatives_dropped_as_false_negatives')} dropped by the same "
                  "margin).")] + [""]
    train = stages.get("train", {})
    if train:
        lines += ["## Training", "", f"{train.get('steps')} steps, {train.get('seconds_per_step')} s/step, loss "
                  f"{train.get('first_loss')} -> {train.get('last_loss')}; {train.get('trainable_parameters')} "
                  f"trainable of {train.get('total_parameters')} parameters"
                  + (" (QLoRA on a 4-bit base)" if train.get("quantized_base") else "") + ".", "",
                  "![loss](loss.png)", ""]
    if ev.get("rows"):
        metric = ev["metric"]
        by_source = ev.get("heldout_by_source", {})
        lines += ["## Held-out queries", "", (f"{ev['heldout_queries']} queries ({by_source}) over {ev['pool_chunks']} "
                  f"chunks; {metric} is the mean over sources."), ""]
        source_columns = [f"{metric}:{s}" for s in by_source]
        lines += _table([{**r, "best": "**best**" if r["name"] == ev["best"]["name"] else ""} for r in ev["rows"]],
                        ["name", "step", metric, *source_columns, f"recall@{metric.split('@')[1]}", "best"]) + [""]
        verdict = ev.get("verdict") or {}
        guard = ev.get("guard") or {}
        lines += [(f"Gain of the best checkpoint over the base: {ev['gain']:+.4f} {metric} on "
                  f"{ev['heldout_queries']} held-out queries from {ev.get('heldout_chunks')} chunks (95% "
                  f"{verdict.get('interval')}, simultaneous over the {verdict.get('checkpoints_compared')} "
                  f"checkpoints compared). Guard ({guard.get('data')}): {guard}."), "",
                  f"**Verdict: {verdict.get('reason', '')}**", "", "![metrics](metrics.png)", ""]
    suite = ev.get("suite")
    if suite:
        names = [k for k in suite if k != "name"]
        lines += [f"## eval/ suite `{suite['name']}`", ""]
        lines += _table([{"model": n, "retrieval": suite[n]["retrieval"], "all": suite[n]["all"]} for n in names],
                        ["model", "retrieval", "all"]) + [""]
    if report.get("recommended"):
        lines += ["## Use it", "", "```python", "from embedder import load_embedder",
                  f"emb = load_embedder({cfg['base']!r}, adapter={report['recommended']!r})", "```", ""]
    elif report.get("best_checkpoint"):
        lines += ["## Use it", "", (f"Keep the base embedder (`load_embedder({cfg['base']!r})`): the run found no "
                  "checkpoint that is safely better."), ""]
    return "\n".join(lines)
