"""Choose the extractive reader's weights on the dev half of the answer bench (never the test half).

The candidates, their cosines, lexical scores and "holds what is asked" flags do not depend on the
weights, so they are computed once per question and the grid is scored from them: contains-gold of
the quoted answer (no threshold) among the questions whose retrieved chunks hold the gold, and the
separation of answerable from unanswerable questions by the best score (AUC), per setting. The rule:
among settings whose answers average at most ``--max-chars`` characters (an answer read at a
glance), the highest contains-gold, then the highest AUC, then the shorter answers.

    python bench/answers_tune.py                 # dev half, all four corpora
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import sys
from dataclasses import replace
from pathlib import Path

# bench/answers.py (it sets the path and the offline environment) under another name: ``answers`` is the package
_spec = importlib.util.spec_from_file_location("answer_bench", Path(__file__).with_name("answers.py"))
bench = sys.modules["answer_bench"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

from answers.extractive import ExtractiveConfig, score_hits, select_spans  # noqa: E402

GRID = {
    "lexical_weight": (0.3, 0.5, 0.7),
    "asked_bonus": (0.0, 0.06, 0.12, 0.2),
    "piece_cost": (0.0, 0.02, 0.04, 0.08),
    "rank_weight": (0.0, 0.02, 0.05),
    "max_quotes": (1, 2, 3),
    "relative_keep": (0.8, 0.85, 0.9),
}


def rescored(spans, config: ExtractiveConfig):
    w = config.lexical_weight
    return [replace(s, score=(1 - w) * s.semantic + w * s.lexical + config.asked_bonus * s.asked
                    - config.piece_cost * (len(s.pieces) - 1) - config.rank_weight * s.hit) for s in spans]


def auc(pos: list[float], neg: list[float]) -> float:
    pairs = [(p > n) + 0.5 * (p == n) for p in pos for n in neg]
    return sum(pairs) / len(pairs) if pairs else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpora", default=",".join(bench.CORPORA))
    p.add_argument("--top", type=int, default=15, help="settings printed")
    p.add_argument("--max-chars", type=float, default=600,
                   help="only settings whose answers average at most this many characters (readable at a glance)")
    p.add_argument("--no-headings", action="store_true", help="candidates without their section's heading")
    args = p.parse_args(argv)
    from embedder import load_embedder

    names = args.corpora.split(",")
    questions = [q for q in bench.load_questions() if q.corpus in names and q.split == "dev"]
    embedder = load_embedder("minilm")
    indexes = bench.build_indexes(names, embedder)
    questions = [q for q in questions if q.corpus in indexes]
    base = replace(ExtractiveConfig(min_score=-1e9), use_headings=not args.no_headings)
    cached = []
    for q in questions:
        hits = indexes[q.corpus].retriever("hybrid", embedder).search(q.question, 5).hits
        ceiling = q.answerable and any(q.found_in(h.text) for h in hits)
        cached.append((q, ceiling, score_hits(q.question, hits, embedder, base)))
    rows = []
    keys = list(GRID)
    for values in itertools.product(*GRID.values()):
        config = replace(base, **dict(zip(keys, values, strict=True)))
        hit_gold, n_ceiling, pos, neg, chars = 0, 0, [], [], []
        for q, ceiling, spans in cached:
            spans = rescored(spans, config)
            best = max((s.score for s in spans), default=-1.0)
            (pos if q.answerable else neg).append(best)
            quoted = " ".join(s.text for s in select_spans(spans, config))
            chars.append(len(quoted))
            if ceiling:
                n_ceiling += 1
                hit_gold += q.found_in(quoted)
        rows.append((hit_gold / max(1, n_ceiling), auc(pos, neg), sum(chars) / len(chars),
                     dict(zip(keys, values, strict=True))))
    rows.sort(key=lambda r: (-r[0], -r[1], r[2]))
    print(f"{len(questions)} dev questions, {sum(c for _, c, _ in cached)} with the gold in their chunks")
    for of_ceiling, separation, chars, setting in [r for r in rows if r[2] <= args.max_chars][:args.top]:
        print(f"of ceiling {of_ceiling:.3f}  AUC {separation:.3f}  chars {chars:.0f}  {setting}")
    shipped = [r for r in rows if all(r[3][k] == getattr(ExtractiveConfig(), k) for k in keys)]
    for of_ceiling, separation, chars, _ in shipped:
        print(f"shipped: of ceiling {of_ceiling:.3f}  AUC {separation:.3f}  chars {chars:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
