"""The prompt of a generated answer: rules and numbered sources as the system turn, then the question."""

from __future__ import annotations

from collections.abc import Sequence

from indexing.records import Hit

SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources given. Cite the sources you use with their "
    "numbers in square brackets, like [1] or [2]. If the sources do not contain the answer, say that "
    "you cannot answer from these documents. Be brief."
)


def format_sources(hits: Sequence[Hit], max_chars: int = 1200) -> str:
    blocks = []
    for i, hit in enumerate(hits, 1):
        title = hit.metadata.get("title") or hit.metadata.get("source", "").rsplit("/", 1)[-1]
        text = hit.text if len(hit.text) <= max_chars else hit.text[:max_chars] + " ..."
        blocks.append(f"[{i}] {title}\n{text}".strip())
    return "\n\n".join(blocks)


def build_messages(question: str, hits: Sequence[Hit], history: Sequence[dict] = (), max_history: int = 4,
                   max_chars: int = 1200) -> list[dict]:
    """Chat messages: rules and numbered sources as the system turn, the last turns, then the question.

    Sources sit in the system turn and the question stands alone as the user turn: small local
    models (SmolLM2-135M) answer the question that way, while with sources and question in one
    user turn they often ignore both.
    """
    messages = [{"role": "system", "content": f"{SYSTEM_PROMPT}\n\nSources:\n\n{format_sources(hits, max_chars)}"}]
    for turn in list(history)[-max_history:]:
        if turn.get("role") in ("user", "assistant") and turn.get("content"):
            messages.append({"role": turn["role"], "content": str(turn["content"])})
    messages.append({"role": "user", "content": question})
    return messages
