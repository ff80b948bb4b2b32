"""Answer quality of each answer mode over a hand-written question set (``bench/answers/questions.jsonl``).

Two corpora: the demo corpus (linqrag's own docs) and ``python_peps`` from the shared data. Each
question has a short gold answer and the one sentence of its document that states it (or none:
unanswerable). Retrieval is the same for every mode (hybrid, top 5, MiniLM); only the author of
the answer changes. Scores per mode:

- **contains gold**: answerable questions whose answer contains the gold answer (case, whitespace
  and markup ignored);
- **supported**: answer sentences that cite a passage and whose content words (stemmed, stop
  words out) are at least 80 % found in the passages they cite; a sentence citing nothing is
  unsupported;
- **citation precision / recall**: a citation is right when its chunk comes from the gold document
  and holds at least half the evidence sentence's content words; precision over all citations of
  answerable questions, recall = answerable questions with at least one right citation;
- **not found**: unanswerable questions the mode declines (extractive: its "not found" line; an
  LLM: a refusal phrase), and answerable questions it wrongly declines;
- **s/answer**: seconds to write the answer (retrieval excluded, reported once).

    python bench/answers.py                       # extractive, local LLM, passages; both corpora
    python bench/answers.py --modes extractive --calibrate
"""

from __future__ import annotations

import argparse
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

from answers.extractive import NOT_FOUND, ExtractiveConfig, candidate_spans, score_spans  # noqa: E402
from answers.pipeline import answer_hits  # noqa: E402
from answers.records import Answer  # noqa: E402
from answers.words import content_words  # noqa: E402

QUESTIONS = ROOT / "bench" / "answers" / "questions.jsonl"
SUPPORT_SHARE = 0.8
EVIDENCE_SHARE = 0.5
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
    answer: str | None
    source: str | None
    evidence: str | None

    @property
    def answerable(self) -> bool:
        return self.answer is not None


@dataclass
class Scored:
    mode: str
    question: Question
    answer: Answer
    seconds: float
    sentences: list[tuple[str, bool]] = field(default_factory=list)
    right_citations: int = 0

    @property
    def declined(self) -> bool:
        return self.answer.text.strip() == NOT_FOUND or bool(REFUSAL.search(self.answer.text))

    @property
    def contains_gold(self) -> bool:
        return self.question.answerable and normalise(self.question.answer) in normalise(self.answer.text)


def load_questions(path: Path = QUESTIONS) -> list[Question]:
    return [Question(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def doc_name(hit) -> str:
    """The id questions use: a PEP id for the PEP corpus (``peps.jsonl.gz#pep-0008``), else the file name."""
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


def score(mode: str, q: Question, answer: Answer, seconds: float) -> Scored:
    result = Scored(mode, q, answer, seconds)
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


def pep_sample(questions: list[Question], size: int, root: Path) -> Path | None:
    """A folder holding the PEPs the questions cite plus others drawn with a fixed seed, ``size`` in all
    (0: every PEP). Written to the cache, never into the project (the data stays in ../shared)."""
    import gzip
    import random

    source = data_dir() / "python_peps" / "peps.jsonl.gz"
    if not source.exists():
        return None
    if not size:
        return source.parent
    with gzip.open(source, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    cited = {q.source for q in questions if q.corpus == "python_peps" and q.source}
    others = sorted(r["_id"] for r in rows if r["_id"] not in cited)
    keep = cited | set(random.Random(13).sample(others, max(0, min(len(others), size - len(cited)))))
    folder = root / f"peps-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in rows if r["_id"] in keep)
    target = folder / "peps.jsonl"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return folder


def build_indexes(names: list[str], embedder, questions: list[Question], peps: int) -> dict:
    from corpora import demo_corpus_dir
    from indexing import build_index, open_index

    root = cache_dir() / "bench-answers"
    folders = {"demo": demo_corpus_dir(), "python_peps": pep_sample(questions, peps, root)}
    indexes = {}
    for name in names:
        folder = folders[name]
        if folder is None or not folder.exists():
            print(f"skip {name}: not found under {data_dir()} (set LINQRAG_DATA)")
            continue
        index = root / (f"{name}-{peps}" if name == "python_peps" else name)
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
        "supported": share(sentences), "sentences": len(sentences),
        "citation_precision": sum(r.right_citations for r in answerable) / citations if citations else float("nan"),
        "citation_recall": share(r.right_citations > 0 for r in answerable),
        "declines_unanswerable": share(r.declined for r in unanswerable),
        "declines_answerable": share(r.declined for r in answerable),
        "seconds": share(r.seconds for r in rows),
    }


TABLE_HEAD = ("| mode | corpus | questions | contains gold | supported sentences | citation P | citation R "
              "| declines unanswerable | declines answerable | s/answer |\n|---|---|---|---|---|---|---|---|---|---|")


def table_row(mode: str, corpus: str, s: dict) -> str:
    def pct(x: float) -> str:
        return "n/a" if math.isnan(x) else f"{100 * x:.0f} %"

    return (f"| {mode} | {corpus} | {s['questions']} ({s['answerable']}) | {pct(s['contains_gold'])} | "
            f"{pct(s['supported'])} of {s['sentences']} | {pct(s['citation_precision'])} | "
            f"{pct(s['citation_recall'])} | "
            f"{pct(s['declines_unanswerable'])} | {pct(s['declines_answerable'])} | {s['seconds']:.2f} |")


def calibrate(questions: list[Question], hits_of: dict, embedder, config: ExtractiveConfig) -> float:
    """The ``min_score`` that best separates answerable from unanswerable questions on the demo corpus
    (balanced accuracy); the PEP questions are then scored with it, unseen."""
    best_scores = []
    for q in questions:
        if q.corpus != "demo":
            continue
        scored = score_spans(q.question, candidate_spans(hits_of[q.id], config), embedder, config)
        best_scores.append((max((s.score for s in scored), default=0.0), q.answerable))
    grid = sorted({round(s, 3) for s, _ in best_scores})
    pos = [s for s, a in best_scores if a]
    neg = [s for s, a in best_scores if not a]

    def balanced(t: float) -> float:
        return (sum(s >= t for s in pos) / len(pos) + sum(s < t for s in neg) / len(neg)) / 2

    threshold = max(grid, key=lambda t: (balanced(t), -t))
    print(f"calibration on {len(pos)} answerable / {len(neg)} unanswerable demo questions: min_score {threshold:.3f} "
          f"(balanced accuracy {balanced(threshold):.2f}; default {config.min_score:.2f} gives "
          f"{balanced(config.min_score):.2f})")
    return threshold


#: the bench's modes, as the pipeline (answers.pipeline) names them
PIPELINE_MODES = {"extractive": "extractive", "local": "local", "passages": "none"}


def answer_all(modes: list[str], questions: list[Question], hits_of: dict, embedder, config: ExtractiveConfig,
               threads: int | None) -> list[Scored]:
    """Every question answered in every mode from the same retrieved hits, through the app's pipeline."""
    from linqrag.generation import load_generator

    generator = None
    rows: list[Scored] = []
    for mode in modes:
        if mode not in PIPELINE_MODES:
            raise SystemExit(f"error: unknown mode {mode!r}")
        if mode == "local":
            generator = load_generator("local", threads=threads)
        for q in questions:
            t = time.perf_counter()
            answer = answer_hits(q.question, hits_of[q.id], mode=PIPELINE_MODES[mode], embedder=embedder,
                                 generator=generator, extractive=config, passages_reason="bench")
            rows.append(score(mode, q, answer, time.perf_counter() - t))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", default="extractive,local,passages", help="comma-separated: extractive, local, passages")
    p.add_argument("--corpora", default="demo,python_peps")
    p.add_argument("--retriever", default="hybrid")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--limit", type=int, help="first N questions per corpus (quick runs)")
    p.add_argument("--peps", type=int, default=200,
                   help="PEPs indexed: the cited ones plus others drawn with a fixed seed (0: all 703, ~20k chunks)")
    p.add_argument("--calibrate", action="store_true", help="choose the not-found threshold on the demo questions")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="runs/answers-results.json")
    args = p.parse_args(argv)

    import torch

    from embedder import load_embedder

    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.corpora.split(",")
    questions = [q for q in load_questions() if q.corpus in names]
    every_question = questions  # the PEP sample depends on the whole set, never on --limit
    if args.limit:
        questions = [q for name in names for q in [q for q in questions if q.corpus == name][:args.limit]]
    embedder = load_embedder("minilm")
    indexes = build_indexes(names, embedder, every_question, args.peps)
    questions = [q for q in questions if q.corpus in indexes]

    t0 = time.perf_counter()
    hits_of = {}
    for q in questions:
        hits_of[q.id] = indexes[q.corpus].retriever(args.retriever, embedder).search(q.question, args.top_k).hits
    per_question = 1000 * (time.perf_counter() - t0) / len(questions)
    print(f"retrieval ({args.retriever}, top {args.top_k}): {per_question:.0f} ms "
          f"per question over {len(questions)} questions")

    config = ExtractiveConfig()
    if args.calibrate:
        config = replace(config, min_score=calibrate(questions, hits_of, embedder, config))

    rows = answer_all(args.modes.split(","), questions, hits_of, embedder, config, args.threads)
    print(TABLE_HEAD)
    results = {}
    for mode in dict.fromkeys(r.mode for r in rows):
        for corpus in [*names, "all"]:
            subset = [r for r in rows if r.mode == mode and (corpus == "all" or r.question.corpus == corpus)]
            if subset:
                results[f"{mode}/{corpus}"] = summarise(subset)
                print(table_row(mode, corpus, results[f"{mode}/{corpus}"]))
    gold = {m: results[f"{m}/all"]["contains_gold"] for m in ("extractive", "local") if f"{m}/all" in results}
    if len(gold) == 2 and gold["local"] > 0:
        print(f"ratio extractive/local contains-gold: {gold['extractive'] / gold['local']:.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"results": results, "min_score": config.min_score, "answers": [
        {"mode": r.mode, "id": r.question.id, "text": r.answer.text, "gold": r.contains_gold, "declined": r.declined,
         "supported": [ok for _, ok in r.sentences], "right_citations": r.right_citations} for r in rows]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
