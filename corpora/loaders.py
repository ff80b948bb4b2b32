"""Read a directory of documents or a BEIR folder into records. Never raises on one bad file:
bad files are reported as :class:`Skipped` with the reason."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from corpora.extract import (
    ExtractionError,
    decode_text,
    decode_wide,
    html_to_text,
    looks_binary,
    normalise_whitespace,
    pdf_to_text,
)
from corpora.records import BeirDataset, Document, LoadReport, Skipped
from corpora.titles import text_title
from linqrag.errors import LinqragError

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".jsonl", ".jsonl.gz"}
#: Files above this size are skipped with a reason rather than read into memory.
DEFAULT_MAX_BYTES = 100 * 2**20


class CorpusError(LinqragError, ValueError):
    """A corpus folder that cannot be read at all (missing, empty of documents, malformed BEIR)."""


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    return ".jsonl.gz" if name.endswith(".jsonl.gz") else path.suffix.lower()


def read_file(path: Path, doc_id: str) -> list[Document]:
    """The documents in one file (a JSONL file holds many). Raises ExtractionError with a reason."""
    suffix = suffix_of(path)
    data = path.read_bytes()
    if suffix in (".jsonl", ".jsonl.gz"):
        return list(iter_beir_corpus(path, id_prefix=f"{doc_id}#"))
    if suffix == ".pdf":
        text, title = pdf_to_text(data)
    else:
        wide = decode_wide(data)
        if wide is None and looks_binary(data):
            raise ExtractionError("binary content (NUL bytes)")
        raw, encoding = wide or decode_text(data)
        if suffix in HTML_SUFFIXES:
            text, title = html_to_text(raw)
        else:
            text, title = normalise_whitespace(raw), text_title(raw) if suffix != ".txt" else ""
        if encoding != "utf-8":
            return [Document(doc_id, text, title or path.stem, str(path), {"encoding": encoding})] if text else []
    return [Document(doc_id, text, title or path.stem, str(path))] if text else []


def _refusal(path: Path, rel: str, inside: Path, max_bytes: int) -> Skipped | None:
    """Why a file is not read at all (a link out of the corpus, a type we cannot read, its size), or None."""
    target = path.resolve()
    if not target.is_relative_to(inside):  # a link (or a linked folder) out of the corpus: never followed
        return Skipped(rel, f"a link to {target}, outside the corpus folder (not followed)")
    if not path.is_file():  # a FIFO, socket or device: reading it could block the build forever
        return Skipped(rel, "not a regular file (a FIFO, socket or device): not read")
    if suffix_of(path) not in SUPPORTED:
        return Skipped(rel, f"unsupported file type {path.suffix or '(none)'}")
    size = path.stat().st_size
    if size == 0:
        return Skipped(rel, "empty file")
    if size > max_bytes:
        return Skipped(rel, f"{size / 2**20:.0f} MiB is over the {max_bytes / 2**20:.0f} MiB limit")
    return None


def load_directory(root: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> LoadReport:
    """Every supported file under ``root`` (recursively, hidden files skipped), in path order.

    Documents whose text repeats an earlier one are skipped as duplicates.
    """
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root} is not a directory")
    documents: list[Document] = []
    skipped: list[Skipped] = []
    notes: list[str] = []
    seen: dict[str, str] = {}
    inside = root.resolve()
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_fifo() or p.is_socket()):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        refusal = _refusal(path, rel, inside, max_bytes)
        if refusal:
            skipped.append(refusal)
            continue
        try:
            docs = read_file(path, rel)
        except (ExtractionError, CorpusError, OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
            # one bad file (a malformed .jsonl line among them) is skipped with its reason, never the build
            skipped.append(Skipped(rel, str(error) or error.__class__.__name__))
            continue
        if not docs:
            skipped.append(Skipped(rel, "no text in it"))
            continue
        for doc in docs:
            digest = hashlib.sha256(doc.text.encode()).hexdigest()
            if digest in seen:
                skipped.append(Skipped(doc.doc_id, f"duplicate of {seen[digest]}"))
                continue
            seen[digest] = doc.doc_id
            if "encoding" in doc.metadata:
                notes.append(f"{rel}: not UTF-8, read as {doc.metadata['encoding']}")
            documents.append(doc)
    return LoadReport(documents, skipped, notes)


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.name.endswith(".gz") else open(path, encoding="utf-8")


def iter_jsonl(path: Path) -> Iterator[dict]:
    with _open_text(path) as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise CorpusError(f"{path}:{number}: not valid JSON ({error.msg})") from error
            if not isinstance(row, dict):
                raise CorpusError(f"{path}:{number}: expected a JSON object")
            yield row


def iter_beir_corpus(path: Path, id_prefix: str = "") -> Iterator[Document]:
    """Documents of a BEIR ``corpus.jsonl`` (``_id``, ``title``, ``text``)."""
    for row in iter_jsonl(path):
        if "_id" not in row or "text" not in row:
            raise CorpusError(f"{path}: a row lacks '_id' or 'text' (BEIR corpus format)")
        text = str(row["text"]).strip()
        if text:
            yield Document(f"{id_prefix}{row['_id']}", text, str(row.get("title") or ""), str(path))


def _find(folder: Path, *names: str) -> Path | None:
    for name in names:
        if (folder / name).exists():
            return folder / name
    return None


def is_beir_folder(folder: str | Path) -> bool:
    folder = Path(folder)
    return _find(folder, "corpus.jsonl", "corpus.jsonl.gz") is not None and (folder / "qrels").is_dir()


def load_beir(folder: str | Path, split: str = "test") -> BeirDataset:
    """A BEIR folder: ``corpus.jsonl[.gz]``, ``queries.jsonl[.gz]``, ``qrels/{split}.tsv``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"BEIR folder {folder} does not exist")
    corpus_path = _find(folder, "corpus.jsonl", "corpus.jsonl.gz")
    queries_path = _find(folder, "queries.jsonl", "queries.jsonl.gz")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    missing = [n for n, p in (("corpus.jsonl", corpus_path), ("queries.jsonl", queries_path)) if p is None]
    if not qrels_path.exists():
        missing.append(f"qrels/{split}.tsv")
    if missing:
        raise CorpusError(f"{folder} is not a BEIR folder: missing {', '.join(missing)}")
    corpus = list(iter_beir_corpus(corpus_path))
    queries = {str(r["_id"]): str(r["text"]) for r in iter_jsonl(queries_path)}
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path, encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        for number, row in enumerate(reader, 1):
            if number == 1 and row and not row[-1].lstrip("-").isdigit():
                continue  # header
            if len(row) < 3:
                raise CorpusError(f"{qrels_path}:{number}: expected query-id, corpus-id, score")
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    if not corpus:
        raise CorpusError(f"{corpus_path} holds no documents")
    return BeirDataset(folder.name, corpus, queries, qrels, split)


def load_corpus(corpus: str | Path) -> LoadReport:
    """A BEIR folder's corpus (ids as in its qrels) or every readable file of a directory."""
    corpus = Path(corpus)
    if is_beir_folder(corpus):
        return LoadReport(load_beir(corpus).corpus, [], [f"{corpus.name}: BEIR folder, corpus only"])
    return load_directory(corpus)
