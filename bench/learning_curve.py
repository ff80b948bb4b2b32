"""The learning curve of domain adaptation: the real-query gain of the budgeted default as the data grows.

For each budget (minutes of this machine), ``finetune.domain --budget B`` sizes its own run (pool,
LLM prompts, steps: ``finetune.budget``) on a BEIR folder's corpus, then ``finetune_ablation.py``
scores the base and the adapted embedder on the folder's real queries of one split (dense and
hybrid nDCG@10, paired-bootstrap 95 % interval). Choose on ``train`` (SciFact) / ``dev`` (NFCorpus);
test is scored once, at the end. LLM answers are shared per dataset (``runs/cache``), so a larger
budget reuses the prompts a smaller one already paid for: its wall time is below its budget, its
data is what the budget buys.

    python bench/learning_curve.py --dataset scifact --split train --budgets 5 10 20 40 --threads 1
    python bench/learning_curve.py --plot-only --out bench/learning_curve.png

Rows go to ``runs/ablation-results.jsonl`` (tag ``budget-B``); the table prints as markdown.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RESULTS = Path("runs/ablation-results.jsonl")
HERE = Path(__file__).resolve().parent


def tag(budget: float) -> str:
    return f"budget-{budget:g}"


def rows(results: Path = RESULTS) -> list[dict]:
    if not results.exists():
        return []
    found = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    return [r for r in found if str(r.get("tag", "")).startswith("budget-")]


def plan_of(row: dict) -> dict:
    path = Path(row["run_dir"]) / "plan.json"
    return json.loads(path.read_text())["plan"] if path.exists() else {}


def prompts_of(row: dict) -> int:
    sizes = plan_of(row).get("sizes", {})
    return sizes.get("max_queries", 0) + sizes.get("max_heldout_queries", 0)


def run_budget(dataset: str, split: str, budget: float, threads: int, max_scale: float) -> None:
    config = Path("runs/curve") / f"{dataset}-{tag(budget)}.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"budget": budget, "budget_max_scale": max_scale}))
    subprocess.run([sys.executable, str(HERE / "finetune_ablation.py"), "--dataset", dataset, "--split", split,
                    "--tag", tag(budget), "--config", str(config), "--threads", str(threads),
                    "--run-dir", f"runs/curve/{dataset}-{tag(budget)}"], check=True)


def table(found: list[dict]) -> str:
    lines = ["| set (split) | budget min | pool | LLM prompts | steps | took min | held-out gain: verdict "
             "| checkpoint scored | dense nDCG@10 base -> adapted (95 %) | hybrid (95 %) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(found, key=lambda r: (r["dataset"], r["split"], float(r["tag"].split("-")[1]))):
        plan = plan_of(r)
        sizes = plan.get("sizes", {})
        d, h = r["dense"], r["hybrid"]
        verdict = "ships it" if r["recommended_by_run"] else "keeps the base"
        gain = r.get("heldout_gain")
        held = f"{gain:+.4f}: {verdict}" if gain is not None else verdict
        lines.append(
            f"| {r['dataset']} ({r['split']}, {r['queries']}) | {r['tag'].split('-')[1]} "
            f"| {sizes.get('max_chunks', '?')} | {prompts_of(r)} | {sizes.get('steps', '?')} "
            f"| {r['pipeline_seconds'] / 60:.1f} | {held} | {r['checkpoint']} "
            f"| {_cell(d)} | {_cell(h)} |")
    return "\n".join(lines)


def _cell(score: dict) -> str:
    low, high = score["ci"]
    return (f"{score['base_ndcg']:.4f} -> {score['adapted_ndcg']:.4f} ({score['diff']:+.4f} "
            f"[{low:+.4f}, {high:+.4f}])")


def plot(found: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    series = sorted({(r["dataset"], r["split"]) for r in found})
    for ax, kind in zip(axes, ("dense", "hybrid"), strict=True):
        for offset, (dataset, split) in enumerate(series):
            these = sorted((r for r in found if (r["dataset"], r["split"]) == (dataset, split)),
                           key=lambda r: float(r["tag"].split("-")[1]))
            prompts = [prompts_of(r) for r in these]
            x = [p * (1 + 0.03 * offset) for p in prompts]
            diffs = [r[kind]["diff"] for r in these]
            low = [r[kind]["diff"] - r[kind]["ci"][0] for r in these]
            high = [r[kind]["ci"][1] - r[kind]["diff"] for r in these]
            ax.errorbar(x, diffs, yerr=[low, high], marker="o", capsize=3, label=f"{dataset} {split}")
            for xi, r in zip(x, these, strict=True):
                ax.annotate(f"{r['tag'].split('-')[1]} min", (xi, r[kind]["diff"]), fontsize=7,
                            textcoords="offset points", xytext=(4, 4))
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("LLM prompts the budget bought (log)")
        ax.set_title(f"{kind}: real-query nDCG@10 gain, 95 % paired bootstrap")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("adapted - base")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset")
    p.add_argument("--split", default="train")
    p.add_argument("--budgets", type=float, nargs="+", default=[5, 10, 20, 40])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-scale", type=float, default=4.0,
                   help="budget_max_scale of the runs: let a large budget grow the data past the recipe")
    p.add_argument("--plot-only", action="store_true")
    p.add_argument("--out", type=Path, default=HERE / "learning_curve.png")
    args = p.parse_args(argv)
    if not args.plot_only:
        if not args.dataset:
            p.error("--dataset is required unless --plot-only")
        done = {(r["dataset"], r["split"], r["tag"]) for r in rows()}
        for budget in args.budgets:
            if (args.dataset, args.split, tag(budget)) in done:
                print(f"{args.dataset}/{args.split} {tag(budget)}: scored earlier, kept", flush=True)
                continue
            run_budget(args.dataset, args.split, budget, args.threads, args.max_scale)
    found = rows()
    print(table(found))
    if found:
        plot(found, args.out)
        print(f"plot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
