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


def query_wrapper(spec, instruction: str | None = None):
    """``text -> formatted query`` for an :class:`~embedder.spec.EmbedderSpec`, ``None`` when bare.

    One definition for local and remote embedders: a remote one formats on the client side."""
    if spec is None or spec.query_template is None:
        return None
    task = instruction if instruction is not None else spec.default_instruction
    template = spec.query_template
    return lambda text: format_query(text, task, template)


def document_wrapper(spec):
    """``text -> formatted document``, ``None`` when documents go in bare."""
    template = None if spec is None else spec.document_template
    return None if template is None else (lambda text: template.format(text=text))
