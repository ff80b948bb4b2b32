"""Query formatting in the E5-mistral / Linq-Embed-Mistral manner."""

from __future__ import annotations

#: The instruction used when a caller gives none (Linq's and E5's web-search retrieval task).
DEFAULT_INSTRUCTION = "Given a question, retrieve passages that answer the question"

#: The query template of E5-mistral and Linq-Embed-Mistral. Documents carry no instruction.
INSTRUCT_TEMPLATE = "Instruct: {instruction}\nQuery: {query}"


#: PromptEOL (Jiang et al., 2023): makes a causal LM that was never trained as an embedder put
#: the meaning of a text into its next-token state. Used for the zero-shot SmolLM2 preset.
PROMPT_EOL_TEMPLATE = 'This passage: "{text}" means in one word: "'
PROMPT_EOL_QUERY_TEMPLATE = 'This passage: "{query}" means in one word: "'


def format_query(query: str, instruction: str | None = None, template: str = INSTRUCT_TEMPLATE) -> str:
    """``Instruct: {task}\\nQuery: {query}``; ``instruction=""`` means no prefix at all.

    Templates without an ``{instruction}`` field (PromptEOL) ignore the instruction.
    """
    if instruction == "" and "{instruction}" in template:
        return query
    return template.format(instruction=(instruction or DEFAULT_INSTRUCTION).strip(), query=query)
