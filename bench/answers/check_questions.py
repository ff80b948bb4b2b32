"""Check the answer bench's questions (``bench/answers/*.jsonl``) against their documents.

    python bench/answers/check_questions.py                 # every file; exit 1 on any failure
    python bench/answers/check_questions.py --fix-sources   # re-point demo rows whose passage moved

Every rule the set is written to is checked, each failure printed on its own line:

* ids unique over all files; fields ``id, corpus, question, answers, source, evidence, kind, split,
  written_by`` (``why_unanswerable`` on unanswerable rows);
* answerable rows: ``source`` names a document of the corpus, ``evidence`` is a verbatim substring of
  it after collapsing whitespace runs, each gold string (1-8 words) occurs in ``evidence``
  case-insensitively;
* unanswerable rows: ``answers``, ``source`` and ``evidence`` all null;
* splits: ``dev`` / ``test`` for the blind files, ``tuned`` for ``tuned.jsonl``; at least 200 blind
  questions over at least three corpora besides the demo, at least 20 % of them unanswerable.

The demo corpus is linqrag's own documentation, which moves: ``--fix-sources`` points a demo row at
the document that now holds its passage (the passage itself is never edited).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from corpora.demo import demo_documents  # noqa: E402 (after the path)

FOLDER = Path(__file__).parent
FIELDS = {"id", "corpus", "question", "answers", "source", "evidence", "kind", "split", "written_by"}
MAX_ANSWER_WORDS = 8
MIN_BLIND, MIN_UNANSWERABLE_SHARE, MIN_CORPORA = 200, 0.20, 3


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def data_folder() -> Path:
    # the data folder as linqrag.settings.data_dir() finds it: $LINQRAG_DATA, else ../shared/data
    return Path(os.environ.get("LINQRAG_DATA") or ROOT.parent / "shared" / "data")


def load_jsonl_gz(path: Path) -> dict[str, str]:
    if not path.exists():
        sys.exit(f"error: corpus not found at {path} (set LINQRAG_DATA)")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return {row["_id"]: collapse(row["text"]) for row in map(json.loads, fh)}


def corpora() -> dict[str, dict[str, str]]:
    data = data_folder()
    demo = {Path(name).name: collapse(text) for name, text in demo_documents().items()}
    return {"demo": demo, "python_peps": load_jsonl_gz(data / "python_peps" / "peps.jsonl.gz"),
            "scifact": load_jsonl_gz(data / "scifact" / "corpus.jsonl.gz"),
            "aila-statutes": load_jsonl_gz(data / "aila-statutes" / "corpus.jsonl.gz")}


def check_row(row: dict, docs: dict[str, dict[str, str]]) -> list[str]:
    problems = []
    extra = set(row) - FIELDS - {"why_unanswerable"}
    if FIELDS - set(row) or extra:
        return [f"fields: missing {sorted(FIELDS - set(row))}, unexpected {sorted(extra)}"]
    if row["corpus"] not in docs:
        return [f"unknown corpus {row['corpus']!r}"]
    if not isinstance(row["question"], str) or len(row["question"].strip()) < 10:
        problems.append("question missing or too short")
    answers, source, evidence = row["answers"], row["source"], row["evidence"]
    if row["kind"] == "unanswerable":
        if answers is not None or source is not None or evidence is not None:
            problems.append("unanswerable row must have answers, source and evidence all null")
        return problems
    if row["kind"] != "answerable" or not answers or not isinstance(source, str) or not isinstance(evidence, str):
        return problems + ["answerable row needs gold strings, a source and an evidence passage"]
    ev = collapse(evidence)
    for gold in answers:
        if not 1 <= len(gold.split()) <= MAX_ANSWER_WORDS:
            problems.append(f"gold {gold!r} has {len(gold.split())} words (1-{MAX_ANSWER_WORDS})")
        if collapse(gold).lower() not in ev.lower():
            problems.append(f"gold {gold!r} not in evidence")
    doc = docs[row["corpus"]].get(source)
    if doc is None:
        problems.append(f"source {source!r} is not a document of {row['corpus']}")
    elif ev not in doc:
        problems.append(f"evidence not found verbatim in {source}: {ev[:80]!r}...")
    return problems


def fix_sources(path: Path, demo: dict[str, str]) -> int:
    """Point demo rows at the document that holds their passage now; returns the rows changed."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    changed = 0
    for row in rows:
        if row["corpus"] != "demo" or not row.get("evidence"):
            continue
        ev = collapse(row["evidence"])
        if ev in demo.get(row["source"], ""):
            continue
        holders = [name for name, text in demo.items() if ev in text]
        if holders:
            row["source"], changed = holders[0], changed + 1
    if changed:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return changed


def main(argv: list[str]) -> int:
    docs = corpora()
    paths = sorted(FOLDER.glob("*.jsonl"))
    if "--fix-sources" in argv:
        for path in paths:
            print(f"{path.name}: {fix_sources(path, docs['demo'])} demo row(s) re-pointed")
    failures: list[str] = []
    rows = []
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                failures.append(f"{path.name}:{n}: not JSON ({error})")
                continue
            rows.append(row)
            failures += [f"{path.name}:{row.get('id', n)}: {p}" for p in check_row(row, docs)]
            want = ("tuned",) if path.name == "tuned.jsonl" else ("dev", "test")
            if row.get("split") not in want:
                failures.append(f"{path.name}:{row.get('id', n)}: split {row.get('split')!r} not in {want}")
    failures += [f"{rid}: id used {n} times" for rid, n in Counter(r.get("id") for r in rows).items() if n > 1]
    blind = [r for r in rows if r.get("split") in ("dev", "test")]
    unanswerable = sum(r.get("kind") == "unanswerable" for r in blind)
    data_corpora = {r["corpus"] for r in blind} - {"demo"}
    too_few = len(blind) < MIN_BLIND or len(data_corpora) < MIN_CORPORA
    if too_few or unanswerable < MIN_UNANSWERABLE_SHARE * len(blind):
        failures.append(f"blind set: {len(blind)} questions, {unanswerable} unanswerable, "
                        f"corpora {sorted(data_corpora)}")
    counts = Counter((r.get("corpus"), r.get("split"), r.get("kind")) for r in rows)
    for key in sorted(counts, key=str):
        print(f"{key[0]:14} {key[1]:6} {key[2]:13} {counts[key]}")
    for failure in failures:
        print(failure)
    print(f"{len(rows)} questions, {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
