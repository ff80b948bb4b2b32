"""Where does a streamlined task's disagreement with the full set come from: the query sample, the
light corpus, or 4-bit decoders? One retrieval task, the same rows as the agreement study, scored
with one of those three changes at a time; Kendall tau of each variant against the full set.

    python bench/eval_sampling_ablation.py --task AILAStatutes --queries 25 --out /tmp/study [--adapter PATH ...]

The full-set rows already scored by ``bench/eval_agreement.py`` in ``--out`` (its ``study-full``
files) are reused, and so are variants scored before; the rest are scored here, mteb cache off.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_agreement import Row, run_row, study_suites  # sets the offline env first

from embedder import adapter_base
from eval.agreement import kendall_tau, ordering
from eval.suites import STREAMLINED_SAMPLING, Suite, TaskSpec


def variants(task: str, queries: int | None) -> dict[str, Suite]:
    """The light task with one thing changed at a time (names say what differs from full)."""
    light = STREAMLINED_SAMPLING[task]
    light = replace(light, max_queries=queries) if queries else light
    all_queries = replace(light, max_queries=10_000)
    whole_corpus = replace(light, random_docs=1_000_000)
    return {
        "sampled queries + light corpus + nf4": Suite("ablate-qsample-light-nf4", (TaskSpec(task, light),), "nf4"),
        "sampled queries + light corpus": Suite("ablate-qsample-light", (TaskSpec(task, light),), "none"),
        "sampled queries only": Suite("ablate-qsample-fullcorpus", (TaskSpec(task, whole_corpus),), "none"),
        "light corpus only": Suite("ablate-allq-light", (TaskSpec(task, all_queries),), "none"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="AILAStatutes")
    parser.add_argument("--queries", type=int, help="query sample size (default: the streamlined suite's)")
    parser.add_argument("--models", nargs="*", default=["minilm", "smollm2", "bm25"])
    parser.add_argument("--adapter", type=Path, action="append", default=[])
    parser.add_argument("--smollm2-max-length", type=int, default=128)
    parser.add_argument("--out", type=Path, required=True, help="the agreement study's --out (rows are reused)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    rows = [Row(m, m, None, args.smollm2_max_length if m == "smollm2" else None) for m in args.models]
    for adapter in args.adapter:
        base = adapter_base(adapter)
        rows.append(Row(f"{base}+{adapter.name}", None, adapter,
                        args.smollm2_max_length if base and "smollm2" in base else None))
    _, full_suite = study_suites([args.task])
    full = {r.label: run_row(r, full_suite, args.out, True, 16, args.threads).score_of(args.task) for r in rows}
    print(f"\n| variant ({args.task}) | " + " | ".join(r.label for r in rows) + " | order | Kendall tau vs full |")
    print("| --- " * (len(rows) + 3) + "|")
    lines = []
    for name, suite in variants(args.task, args.queries).items():
        scores = {r.label: run_row(r, suite, args.out, True, 16, args.threads).score_of(args.task) for r in rows}
        tau = kendall_tau(scores, full)
        lines.append(f"| {name} | " + " | ".join(f"{scores[r.label]:.4f}" for r in rows)
                     + f" | {' > '.join(ordering(scores))} | {tau:.3f} |")
    lines.append("| full | " + " | ".join(f"{full[r.label]:.4f}" for r in rows)
                 + f" | {' > '.join(ordering(full))} | 1.000 |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
