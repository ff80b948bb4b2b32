"""Check the answer-quality question set (``bench/answers/questions.jsonl``) against its documents.

    python bench/answers/check_questions.py [questions.jsonl]

Every rule the set is written to is checked, each failure printed on its own line; exit 1 on any.

* ids unique, fields exactly ``id, corpus, question, answer, source, evidence``;
* answerable rows: ``source`` names a document of the corpus, ``evidence`` is a verbatim substring of it
  after collapsing whitespace runs to one space, ``answer`` (1-8 words) occurs in ``evidence``
  case-insensitively after the same collapse;
* unanswerable rows: ``answer``, ``source`` and ``evidence`` all null;
* counts per corpus (answerable / unanswerable) and the number of distinct PEPs cited.
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

from corpora.demo import demo_documents

QUESTIONS = Path(__file__).with_name("questions.jsonl")
FIELDS = ("id", "corpus", "question", "answer", "source", "evidence")
# corpus -> (answerable, unanswerable)
EXPECTED = {"python_peps": (42, 8), "demo": (24, 6)}
MIN_DISTINCT_PEPS = 30
FAMOUS_PEPS = ("pep-0008", "pep-0020", "pep-0257", "pep-0484", "pep-0572", "pep-0634", "pep-3107")
MAX_ANSWER_WORDS = 8
EVIDENCE_CHARS = (20, 400)  # hard bounds; 60-300 is the aim


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def load_peps() -> dict[str, str]:
    # the data folder as linqrag.settings.data_dir() finds it: $LINQRAG_DATA, else ../shared/data
    data = Path(os.environ.get("LINQRAG_DATA") or ROOT.parent / "shared" / "data")
    path = data / "python_peps" / "peps.jsonl.gz"
    if not path.exists():
        sys.exit(f"error: PEP corpus not found at {path} (set LINQRAG_DATA)")
    docs = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            docs[row["_id"]] = collapse(row["text"])
    return docs


def load_rows(path: Path, failures: list[str]) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            failures.append(f"line {n}: blank line")
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            failures.append(f"line {n}: not JSON ({e})")
            continue
        if not isinstance(row, dict):
            failures.append(f"line {n}: not a JSON object")
            continue
        rows.append(row)
    return rows


def check_row(row: dict, corpora: dict[str, dict[str, str]]) -> list[str]:
    rid = row.get("id", "?")
    problems = []
    if tuple(sorted(row)) != tuple(sorted(FIELDS)):
        problems.append(f"fields {sorted(row)} != {sorted(FIELDS)}")
        return [f"{rid}: {p}" for p in problems]
    corpus = row["corpus"]
    if corpus not in corpora:
        return [f"{rid}: unknown corpus {corpus!r}"]
    if not isinstance(row["question"], str) or len(row["question"].strip()) < 10:
        problems.append("question missing or too short")
    answer, source, evidence = row["answer"], row["source"], row["evidence"]
    if answer is None:
        if source is not None or evidence is not None:
            problems.append("unanswerable row must have answer, source and evidence all null")
        return [f"{rid}: {p}" for p in problems]
    if not all(isinstance(v, str) and v.strip() for v in (answer, source, evidence)):
        problems.append("answerable row needs non-empty string answer, source and evidence")
        return [f"{rid}: {p}" for p in problems]
    words = len(answer.split())
    if not 1 <= words <= MAX_ANSWER_WORDS:
        problems.append(f"answer has {words} words (1-{MAX_ANSWER_WORDS})")
    ev = collapse(evidence)
    if not EVIDENCE_CHARS[0] <= len(ev) <= EVIDENCE_CHARS[1]:
        problems.append(f"evidence is {len(ev)} characters ({EVIDENCE_CHARS[0]}-{EVIDENCE_CHARS[1]})")
    if collapse(answer).lower() not in ev.lower():
        problems.append(f"answer {answer!r} not in evidence")
    doc = corpora[corpus].get(source)
    if doc is None:
        problems.append(f"source {source!r} is not a document of {corpus}")
    elif ev not in doc:
        problems.append(f"evidence not found verbatim in {source}: {ev[:80]!r}...")
    return [f"{rid}: {p}" for p in problems]


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else QUESTIONS
    failures: list[str] = []
    rows = load_rows(path, failures)
    corpora = {"python_peps": load_peps(),
               "demo": {name: collapse(text) for name, text in demo_documents().items()}}

    ids = Counter(row.get("id") for row in rows)
    failures += [f"{rid}: id used {n} times" for rid, n in ids.items() if n > 1]
    for row in rows:
        failures += check_row(row, corpora)

    counts = {c: Counter() for c in EXPECTED}
    sources = {c: set() for c in EXPECTED}
    for row in rows:
        c = row.get("corpus")
        if c in counts:
            counts[c]["answerable" if row.get("answer") is not None else "unanswerable"] += 1
            if row.get("source"):
                sources[c].add(row["source"])
    for c, (want_a, want_u) in EXPECTED.items():
        got_a, got_u = counts[c]["answerable"], counts[c]["unanswerable"]
        if (got_a, got_u) != (want_a, want_u):
            failures.append(f"{c}: {got_a} answerable / {got_u} unanswerable, expected {want_a} / {want_u}")
    if len(sources["python_peps"]) < MIN_DISTINCT_PEPS:
        failures.append(f"python_peps: {len(sources['python_peps'])} distinct PEPs, need >= {MIN_DISTINCT_PEPS}")
    missing = [p for p in FAMOUS_PEPS if p not in sources["python_peps"]]
    if missing:
        failures.append(f"python_peps: no question on {', '.join(missing)}")

    for c in EXPECTED:
        print(f"{c}: {counts[c]['answerable']} answerable, {counts[c]['unanswerable']} unanswerable, "
              f"{len(sources[c])} distinct sources")
    print(f"total: {len(rows)} rows, {sum(len(s) for s in sources.values())} distinct sources")
    if failures:
        print(f"\n{len(failures)} problem(s):", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
