"""Split the blind questions once into a dev half (every weight, threshold and rule is chosen on it)
and a test half (scored at the end), and write the split into each row.

    python bench/answers/assign_split.py bench/answers/blind_*.jsonl

Within each corpus and kind (answerable, unanswerable) the rows are ordered by a hash of their id
and dealt alternately to dev and test, so both halves hold every corpus and kind in the same share
and the split depends on nothing a scorer sees. A row that already has a split keeps it: running
this again never moves a question between halves.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path


def assign(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if not row.get("split"):
            groups[(row["corpus"], row["kind"])].append(row)
    for group in groups.values():
        taken = sum(1 for r in rows if r.get("split") == "dev" and (r["corpus"], r["kind"]) == (group[0]["corpus"],
                                                                                                group[0]["kind"]))
        for i, row in enumerate(sorted(group, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())):
            row["split"] = "dev" if (i + taken) % 2 == 0 else "test"
    return rows


def main(paths: list[str]) -> int:
    for path in map(Path, paths):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows = assign(rows)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        halves = defaultdict(int)
        for r in rows:
            halves[r["split"], r["kind"]] += 1
        print(path.name, dict(sorted(halves.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
