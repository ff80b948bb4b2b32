"""The evaluation sets in the shared data folder, read into plain records.

Retrieval sets are BEIR folders (read by :func:`corpora.load_beir`); STS sets are the original
STS Benchmark and SICK files. Everything raises :class:`DatasetError` with the file at fault, so a
missing or broken download reads as one clear sentence instead of a traceback.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from corpora import BeirDataset, CorpusError, is_beir_folder, load_beir
from eval.errors import DatasetError

RETRIEVAL = "retrieval"
STS = "sts"

#: E5-mistral's instruction for STS, given to both sentences (a symmetric task has no documents).
STS_INSTRUCTION = "Retrieve semantically similar text."


@dataclass(frozen=True)
class LocalDataset:
    """A named evaluation set in the data folder; ``name`` is the MTEB task it stands in for."""

    name: str
    folder: str
    kind: str
    instruction: str
    split: str = "test"
    description: str = ""
    license: str | None = None


@dataclass(frozen=True)
class StsPairs:
    """Sentence pairs with gold similarity scores (``min_score``..``max_score``)."""

    name: str
    sentence1: list[str]
    sentence2: list[str]
    scores: list[float]
    min_score: float = 0.0
    max_score: float = 5.0

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, indices: list[int]) -> StsPairs:
        return StsPairs(self.name, [self.sentence1[i] for i in indices], [self.sentence2[i] for i in indices],
                        [self.scores[i] for i in indices], self.min_score, self.max_score)


#: The local sets, under the names MTEB gives the tasks they reproduce (instructions as E5-mistral's).
LOCAL_DATASETS: dict[str, LocalDataset] = {
    d.name: d
    for d in (
        LocalDataset("SciFact", "scifact", RETRIEVAL,
                     "Given a scientific claim, retrieve documents that support or refute the claim",
                     description="BEIR SciFact test: 300 claims, 5,183 abstracts", license="cc-by-nc-4.0"),
        LocalDataset("NFCorpus", "nfcorpus", RETRIEVAL,
                     "Given a question, retrieve relevant documents that best answer the question",
                     description="BEIR NFCorpus test: 323 queries, 3,633 PubMed documents, graded",
                     license="cc-by-sa-4.0"),
        LocalDataset("AILAStatutes", "aila-statutes", RETRIEVAL,
                     "Identifying the most relevant statutes for a given situation",
                     description="AILA 2019 statutes: 50 case situations, 197 statutes", license="cc-by-4.0"),
        LocalDataset("AILACasedocs", "aila-casedocs", RETRIEVAL,
                     "Given a legal case scenario, retrieve the most relevant case documents",
                     description="AILA 2019 precedents: 50 situations, 2,914 long judgments", license="cc-by-4.0"),
        LocalDataset("STSBenchmark", "stsbenchmark", STS, STS_INSTRUCTION,
                     description="STS Benchmark test: 1,379 pairs, gold 0-5", license="cc-by-sa-4.0"),
        LocalDataset("SICK-R", "sick", STS, STS_INSTRUCTION, split="all",
                     description="SICK relatedness, all 9,840 pairs, gold 1-5", license="cc-by-nc-sa-3.0"),
    )
}

DEFAULT_RETRIEVAL_INSTRUCTION = "Given a query, retrieve relevant documents that answer the query"


def data_files(folder: Path, kind: str, split: str = "test") -> list[Path]:
    """The files a set is read from (what its fingerprint covers)."""
    if kind == STS:
        return sorted(p for p in folder.iterdir() if p.name in ("sts-test.csv", "SICK.txt.gz", "SICK.txt"))
    names = ["corpus.jsonl", "corpus.jsonl.gz", "queries.jsonl", "queries.jsonl.gz", f"qrels/{split}.tsv"]
    return [folder / n for n in names if (folder / n).exists()]


def fingerprint(paths: list[Path], head_bytes: int = 1 << 20) -> str:
    """Size and first MiB of each file: a changed download gives a new cache key, cheaply."""
    h = hashlib.sha256()
    for path in paths:
        h.update(f"{path.name}:{path.stat().st_size}".encode())
        with open(path, "rb") as fh:
            h.update(fh.read(head_bytes))
    return h.hexdigest()[:8]


def missing_folder_message(folder: Path, what: str) -> str:
    return (f"{what} not found: {folder} does not exist. Put the data folder there or set LINQRAG_DATA "
            "to the folder that holds it (see ../shared/data/*/SOURCE.md for the layout).")


def load_retrieval(folder: Path, split: str = "test") -> BeirDataset:
    """A BEIR folder checked for what evaluation needs: judged queries whose documents exist."""
    if not folder.is_dir():
        raise DatasetError(missing_folder_message(folder, "retrieval set"))
    if not is_beir_folder(folder):
        raise DatasetError(f"{folder} is not a BEIR folder: it needs corpus.jsonl[.gz], queries.jsonl and "
                           f"qrels/{split}.tsv")
    try:
        dataset = load_beir(folder, split=split)
    except (CorpusError, OSError, UnicodeDecodeError, ValueError, EOFError) as error:
        raise DatasetError(f"malformed retrieval set {folder}: {error}") from None
    doc_ids = {d.doc_id for d in dataset.corpus}
    judged = {q for q, rels in dataset.qrels.items() if q in dataset.queries and any(r > 0 for r in rels.values())}
    if not judged:
        raise DatasetError(f"malformed retrieval set {folder}: no query in qrels/{split}.tsv has a positive "
                           "judgement and a text in queries.jsonl")
    known = sum(1 for q in judged for d in dataset.qrels[q] if d in doc_ids)
    if known == 0:
        raise DatasetError(f"malformed retrieval set {folder}: none of the judged documents is in the corpus")
    return dataset


def _sts_row_error(path: Path, number: int, why: str) -> DatasetError:
    return DatasetError(f"malformed STS file {path}:{number}: {why}")


def read_sts_benchmark(path: Path) -> StsPairs:
    """STS-B distribution file: tab-separated, gold in column 5, sentences in 6 and 7; no quoting."""
    s1, s2, scores = [], [], []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 7:
                raise _sts_row_error(path, number, f"expected at least 7 tab-separated fields, got {len(fields)}")
            try:
                scores.append(float(fields[4]))
            except ValueError:
                raise _sts_row_error(path, number, f"score {fields[4]!r} is not a number") from None
            s1.append(fields[5])
            s2.append(fields[6])
    return StsPairs("STSBenchmark", s1, s2, scores, 0.0, 5.0)


def read_sick(path: Path) -> StsPairs:
    """SICK release: tab-separated with a header, CRLF endings; relatedness 1-5 is the gold."""
    opener = gzip.open if path.name.endswith(".gz") else open
    s1, s2, scores = [], [], []
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
        try:
            a, b, gold = (header.index(c) for c in ("sentence_A", "sentence_B", "relatedness_score"))
        except ValueError:
            raise _sts_row_error(path, 1, "header lacks sentence_A, sentence_B or relatedness_score") from None
        for number, line in enumerate(fh, 2):
            fields = [f.rstrip("\r") for f in line.rstrip("\r\n").split("\t")]
            if len(fields) == 1 and not fields[0]:
                continue
            if len(fields) <= max(a, b, gold):
                raise _sts_row_error(path, number, f"expected {len(header)} tab-separated fields, got {len(fields)}")
            try:
                scores.append(float(fields[gold]))
            except ValueError:
                raise _sts_row_error(path, number, f"relatedness {fields[gold]!r} is not a number") from None
            s1.append(fields[a])
            s2.append(fields[b])
    return StsPairs("SICK-R", s1, s2, scores, 1.0, 5.0)


def load_sts(folder: Path, name: str) -> StsPairs:
    """The STS set ``name`` (``STSBenchmark`` or ``SICK-R``) from its folder."""
    if not folder.is_dir():
        raise DatasetError(missing_folder_message(folder, f"STS set {name}"))
    if name == "STSBenchmark":
        path = folder / "sts-test.csv"
        reader = read_sts_benchmark
    else:
        path = folder / "SICK.txt.gz" if (folder / "SICK.txt.gz").exists() else folder / "SICK.txt"
        reader = read_sick
    if not path.exists():
        raise DatasetError(f"STS set {name}: {path} is missing (see {folder}/SOURCE.md)")
    try:
        pairs = reader(path)
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise DatasetError(f"malformed STS file {path}: {error}") from None
    if len(pairs) < 3:
        raise DatasetError(f"malformed STS file {path}: {len(pairs)} pairs, too few to correlate")
    return pairs
