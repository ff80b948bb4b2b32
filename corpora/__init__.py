"""Reading documents: directories of files (txt, md, html, pdf, BEIR jsonl), BEIR folders, the demo corpus."""

from corpora.demo import DEMO_CORPUS_NAME, demo_corpus_dir
from corpora.extract import ExtractionError
from corpora.loaders import CorpusError, is_beir_folder, iter_beir_corpus, load_beir, load_corpus, load_directory
from corpora.records import BeirDataset, Document, LoadReport, Skipped

__all__ = [
    "DEMO_CORPUS_NAME",
    "BeirDataset",
    "CorpusError",
    "Document",
    "ExtractionError",
    "LoadReport",
    "Skipped",
    "demo_corpus_dir",
    "is_beir_folder",
    "iter_beir_corpus",
    "load_beir",
    "load_corpus",
    "load_directory",
]
