"""Answer quality of each answer mode over questions written by reading the documents (``bench/answers/``).

Four corpora, each indexed whole: the demo corpus (linqrag's own docs), ``python_peps`` (all 703
PEPs), ``scifact`` (5,183 abstracts) and ``aila-statutes`` (197 Indian statutes), from the shared
data. ``blind_*.jsonl`` were written by helpers who never read the answering code, split once into a
dev half (every weight, threshold and rule is chosen on it) and a test half scored at the end
(``bench/answers/assign_split.py``); ``tuned.jsonl`` (split ``tuned``) was written alongside the
scorer and is reported apart. Each question has short gold strings and the passage that states
them, or none (unanswerable). Retrieval is the same for every mode (hybrid, top 5, MiniLM); only
the author of the answer changes. Scores per mode:

- **contains gold**: answerable questions whose answer contains one of the gold strings (case,
  whitespace and markup ignored); **ceiling**: those whose retrieved chunks contain one (what any
  answer written from them could reach); **of ceiling**: contains gold among the ceiling questions;
- **supported**: answer sentences that cite a passage and whose content words (stemmed, stop
  words out) are at least 80 % found in the passages they cite; a sentence citing nothing is
  unsupported;
- **citation precision / recall**: a citation is right when its chunk comes from the gold document
  and holds at least half the evidence passage's content words; precision over all citations of
  answerable questions, recall = answerable questions with at least one right citation;
- **not found**: unanswerable questions the mode declines (extractive: its "not found" line; an
  LLM: a refusal phrase), and answerable questions it wrongly declines;
- **s/answer**: seconds to write the answer (retrieval excluded, reported once).

    python bench/answers.py --split dev                      # extractive and passages, dev half
    python bench/answers.py --split dev --calibrate          # choose the "not found" threshold
    python bench/answers.py --split test --modes extractive  # once, at the end
    python bench/answers.py --modes openai --base-url http://127.0.0.1:8080/v1 --limit 10
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from linqrag.settings import apply_offline_env, cache_dir, data_dir  # noqa: E402 (after the path)

apply_offline_env()

from answers.extractive import NOT_FOUND, ExtractiveConfig, best_score  # noqa: E402
from answers.pipeline import answer_hits  # noqa: E402
from answers.records import Answer  # noqa: E402
from answers.words import content_words  # noqa: E402

QUESTION_DIR = ROOT / "bench" / "answers"
CORPORA = ("demo", "python_peps", "scifact", "aila-statutes")
SUPPORT_SHARE = 0.8
EVIDENCE_SHARE = 0.5
#: the share of answerable questions the "not found" threshold may decline (the calibration rule: the goal's
#: bound, so the threshold declines as many unanswerable questions as that allows)
DECLINE_ALPHA = 0.15
REFUSAL = re.compile(r"cannot answer|can't answer|not (?:contain|mention|say|provide)|no (?:information|passage)|"
                     r"do(?:es)? not (?:know|have)|unable to|found no passage", re.IGNORECASE)
_CITE = re.compile(r"\s*\[(\d{1,3})\]")
_SENT = re.compile(r"[^.!?\n]+(?:[.!?]+|$)(?:\s*\[\d{1,3}\])*")


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[`*_\"']", "", text.lower()).split())


@dataclass
class Question:
    id: str
    corpus: str
    question: str
    answers: list[str] | None
    source: str | None
    evidence: str | None
    kind: str
    split: str
    written_by: str
    why_unanswerable: str | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    def found_in(self, text: str) -> bool:
        text = normalise(text)
        return any(normalise(a) in text for a in self.answers or ())


@dataclass
class Scored:
    mode: str
    question: Question
    answer: Answer
    seconds: float
    ceiling: bool = False  # a gold string stands in the retrieved chunks
    sentences: list[tuple[str, bool]] = field(default_factory=list)
    right_citations: int = 0

    @property
    def declined(self) -> bool:
        if self.answer.generated:  # a language model's refusal, in its own words
            return bool(REFUSAL.search(self.answer.text))
        return self.answer.text.strip() == NOT_FOUND

    @property
    def contains_gold(self) -> bool:
        return self.question.answerable and not self.declined and self.question.found_in(self.answer.text)


def load_questions(folder: Path = QUESTION_DIR) -> list[Question]:
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        rows += [Question(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


def doc_name(hit) -> str:
    """The id questions use: a PEP id for the PEP corpus (``peps.jsonl#pep-0008``), a BEIR ``_id``, else the
    file name."""
    return hit.doc_id.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def answer_sentences(text: str) -> list[tuple[str, list[int]]]:
    """An answer cut into claims at its citation markers, each with the numbers it carries; text after
    the last marker is cut into sentences, which cite nothing. (Cutting at markers, not at full stops,
    keeps "e.g." or "1.5" inside one claim.)"""
    out, cursor = [], 0
    for group in re.finditer(r"(?:\s*\[\d{1,3}\])+", text):
        claim = text[cursor:group.start()]
        numbers = [int(n) for n in _CITE.findall(group.group(0))]
        cursor = group.end()
        if len(content_words(claim)) >= 2:
            out.append((claim.strip(" .,;"), numbers))
    for sentence in _SENT.findall(text[cursor:]):
        if len(content_words(sentence)) >= 2:
            out.append((sentence.strip(), []))
    return out


def score(mode: str, q: Question, answer: Answer, seconds: float, hits) -> Scored:
    result = Scored(mode, q, answer, seconds, ceiling=q.answerable and any(q.found_in(h.text) for h in hits))
    by_number = {c.number: c.hit for c in answer.citations}
    if not result.declined and answer.mode != "passages":
        for sentence, numbers in answer_sentences(answer.text):
            cited = " ".join(by_number[n].text for n in numbers if n in by_number)
            words = content_words(sentence)
            found = len(words & content_words(cited)) / len(words) if cited else 0.0
            result.sentences.append((sentence, found >= SUPPORT_SHARE))
    if q.answerable:
        evidence = content_words(q.evidence)
        result.right_citations = sum(
            doc_name(c.hit) == q.source and len(evidence & content_words(c.hit.text)) >= EVIDENCE_SHARE * len(evidence)
            for c in answer.citations)
    return result


def pep_folder(root: Path) -> Path | None:
    """All 703 PEPs as one JSONL file in the cache (the data's folder also holds SOURCE.md, which is no PEP);
    written to the cache, never into the project (the data stays in ../shared)."""
    source = data_dir() / "python_peps" / "peps.jsonl.gz"
    if not source.exists():
        return None
    folder = root / "peps-all"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "peps.jsonl"
    if not target.exists():
        with gzip.open(source, "rt", encoding="utf-8") as fh:
            target.write_text(fh.read(), encoding="utf-8")
    return folder


def corpus_folder(name: str, root: Path) -> Path | None:
    from corpora import demo_corpus_dir

    if name == "demo":
        return demo_corpus_dir()
    if name == "python_peps":
        return pep_folder(root)
    folder = data_dir() / name
    return folder if folder.exists() else None


def build_indexes(names: list[str], embedder) -> dict:
    from indexing import build_index, open_index

    root = cache_dir() / "bench-answers"
    indexes = {}
    for name in names:
        folder = corpus_folder(name, root)
        if folder is None:
            print(f"skip {name}: not found under {data_dir()} (set LINQRAG_DATA)")
            continue
        index = root / f"index-{name}"
        report = build_index(folder, embedder, index, name=name)
        print(f"index {name}: {report.summary()}")
        indexes[name] = open_index(index, corpus=name)
    return indexes


def summarise(rows: list[Scored]) -> dict:
    answerable = [r for r in rows if r.question.answerable]
    unanswerable = [r for r in rows if not r.question.answerable]
    sentences = [ok for r in rows for _, ok in r.sentences]
    citations = sum(len(r.answer.citations) for r in answerable)

    def share(values) -> float:
        values = list(values)
        return sum(values) / len(values) if values else float("nan")

    return {
        "questions": len(rows), "answerable": len(answerable),
        "contains_gold": share(r.contains_gold for r in answerable),
        "ceiling": share(r.ceiling for r in answerable),
        "of_ceiling": share(r.contains_gold for r in answerable if r.ceiling),
        "supported": share(sentences), "sentences": len(sentences),
        "citation_precision": sum(r.right_citations for r in answerable) / citations if citations else float("nan"),
        "citation_recall": share(r.right_citations > 0 for r in answerable),
        "declines_unanswerable": share(r.declined for r in unanswerable),
        "declines_answerable": share(r.declined for r in answerable),
        "seconds": share(r.seconds for r in rows),
    }


TABLE_HEAD = ("| mode | split | corpus | questions (answerable) | contains gold | ceiling | of ceiling | supported "
              "| citation P | citation R | declines unanswerable | declines answerable | s/answer |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def table_row(mode: str, split: str, corpus: str, s: dict) -> str:
    def pct(x: float) -> str:
        return "n/a" if math.isnan(x) else f"{100 * x:.0f} %"

    return (f"| {mode} | {split} | {corpus} | {s['questions']} ({s['answerable']}) | {pct(s['contains_gold'])} | "
            f"{pct(s['ceiling'])} | {pct(s['of_ceiling'])} | {pct(s['supported'])} of {s['sentences']} | "
            f"{pct(s['citation_precision'])} | {pct(s['citation_recall'])} | "
            f"{pct(s['declines_unanswerable'])} | {pct(s['declines_answerable'])} | {s['seconds']:.2f} |")


def conformal_threshold(answerable_scores: list[float], alpha: float) -> float:
    """The split-conformal bound: the ``floor(alpha * (n + 1))``-th smallest best-span score of the
    answerable calibration questions, so a new answerable question (exchangeable with them) scores
    below it, and is declined, with probability at most ``alpha``."""
    ranked = sorted(answerable_scores)
    k = math.floor(alpha * (len(ranked) + 1))
    return ranked[k - 1] if k >= 1 else 0.0


def calibrate(questions: list[Question], hits_of: dict, embedder, config: ExtractiveConfig,
              alpha: float = DECLINE_ALPHA) -> float:
    """The ``min_score`` set by :func:`conformal_threshold` on the dev half's answerable questions; the
    share of unanswerable dev questions it declines is printed beside it."""
    best = [(best_score(q.question, hits_of[q.id], embedder, config), q.answerable) for q in questions]
    pos = [s for s, a in best if a]
    neg = [s for s, a in best if not a]
    threshold = conformal_threshold(pos, alpha)
    print(f"calibration on {len(pos)} answerable / {len(neg)} unanswerable questions (alpha {alpha}): "
          f"min_score {threshold:.3f} declines {sum(s < threshold for s in neg)}/{len(neg)} unanswerable, "
          f"{sum(s < threshold for s in pos)}/{len(pos)} answerable (shipped {config.min_score:.3f}: "
          f"{sum(s < config.min_score for s in neg)}/{len(neg)}, {sum(s < config.min_score for s in pos)}/{len(pos)})")
    return threshold


#: the bench's modes, as the pipeline (answers.pipeline) names them
PIPELINE_MODES = {"extractive": "extractive", "local": "local", "openai": "openai", "passages": "none"}


def answer_all(modes: list[str], questions: list[Question], hits_of: dict, embedder, config: ExtractiveConfig,
               args) -> list[Scored]:
    """Every question answered in every mode from the same retrieved hits, through the app's pipeline."""
    from linqrag.generation import load_generator

    rows: list[Scored] = []
    for mode in modes:
        if mode not in PIPELINE_MODES:
            raise SystemExit(f"error: unknown mode {mode!r}")
        generator = None
        if mode == "local":
            generator = load_generator("local", threads=args.threads)
        elif mode == "openai":
            generator = load_generator("openai", base_url=args.base_url, model=args.model)
        for q in questions:
            t = time.perf_counter()
            answer = answer_hits(q.question, hits_of[q.id], mode=PIPELINE_MODES[mode], embedder=embedder,
                                 generator=generator, extractive=config, passages_reason="bench")
            rows.append(score(mode, q, answer, time.perf_counter() - t, hits_of[q.id]))
    return rows


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", default="extractive,passages",
                   help="comma-separated: extractive, local, openai, passages")
    p.add_argument("--corpora", default=",".join(CORPORA))
    p.add_argument("--split", default="dev", choices=("dev", "test", "tuned", "all"),
                   help="which questions: the dev half (choose on it), the test half (score once), the tuned set")
    p.add_argument("--retriever", default="hybrid")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--limit", type=int, help="first N questions per corpus (quick runs, slow modes)")
    p.add_argument("--calibrate", action="store_true",
                   help=f"set the not-found threshold by the conformal rule (alpha {DECLINE_ALPHA}) on these questions")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--base-url", help="openai mode: the endpoint (an OpenAI-compatible server)")
    p.add_argument("--model", help="openai mode: the model name the endpoint expects")
    p.add_argument("--out", default="runs/answers-results.json")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from embedder import load_embedder

    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.corpora.split(",")
    questions = [q for q in load_questions() if q.corpus in names and args.split in (q.split, "all")]
    if args.limit:
        questions = [q for name in names for q in [q for q in questions if q.corpus == name][:args.limit]]
    embedder = load_embedder("minilm")
    indexes = build_indexes(names, embedder)
    questions = [q for q in questions if q.corpus in indexes]

    t0 = time.perf_counter()
    hits_of = {q.id: indexes[q.corpus].retriever(args.retriever, embedder).search(q.question, args.top_k).hits
               for q in questions}
    per_question = 1000 * (time.perf_counter() - t0) / max(1, len(questions))
    print(f"retrieval ({args.retriever}, top {args.top_k}): {per_question:.0f} ms "
          f"per question over {len(questions)} questions ({args.split})")

    config = ExtractiveConfig()
    if args.calibrate:
        config = replace(config, min_score=calibrate(questions, hits_of, embedder, config))

    rows = answer_all(args.modes.split(","), questions, hits_of, embedder, config, args)
    print(TABLE_HEAD)
    results = {}
    for mode in dict.fromkeys(r.mode for r in rows):
        for corpus in [*names, "all"]:
            subset = [r for r in rows if r.mode == mode and (corpus == "all" or r.question.corpus == corpus)]
            if subset:
                results[f"{mode}/{corpus}"] = summarise(subset)
                print(table_row(mode, args.split, corpus, results[f"{mode}/{corpus}"]))
    for mode in ("extractive", "local", "openai"):
        overall = results.get(f"{mode}/all")
        if overall and overall["ceiling"] > 0:
            print(f"ratio answer/ceiling contains-gold: {overall['contains_gold'] / overall['ceiling']:.2f} "
                  f"({mode}, {args.split} half)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"split": args.split, "results": results, "min_score": config.min_score,
                                          "answers": [
        {"mode": r.mode, "id": r.question.id, "question": r.question.question, "gold": r.question.answers,
         "text": r.answer.text, "contains_gold": r.contains_gold, "ceiling": r.ceiling, "declined": r.declined,
         "supported": [ok for _, ok in r.sentences], "right_citations": r.right_citations} for r in rows]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
