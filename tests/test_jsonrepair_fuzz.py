"""The JSON repair reads untrusted LLM replies: whatever the model writes, it returns a parse or
raises its own refusal (``OutputRejected``), never anything else, so one bad reply cannot end a run."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetune.jsonrepair import OutputRejected, parse_json_object, parse_string_list
from finetune.queries import check_answer

#: SmolLM2's reply that ended a ``finetune.domain`` run with ``JSONDecodeError: Extra data``.
LEADING_ZERO_REPLY = ('{"query": "How to create a new version of a recipe ...", "hard_negative": "...", '
                      '"numbers": 001, "project')

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
replies = st.fixed_dictionaries({"query": st.text(max_size=40)},
                                optional={"hard_negative": json_values, "extra": json_values})
#: Fragments small models write where JSON expects something else.
noise = st.sampled_from(['"', "'", "{", "}", "[", "]", ":", ",", "\\", "\\u", "\\ud800", "001", "-", "1e",
                         "1.", "NaN", "```json", "\n", "9" * 5000, "[" * 3000, "{\"a\":" * 3000, "\x00", "é"])


@st.composite
def mutated_replies(draw) -> str:
    text = json.dumps(draw(replies), ensure_ascii=draw(st.booleans()))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "truncate", "zero_pad"]))
        if action == "insert":
            text = text[:at] + draw(noise | st.text(max_size=5)) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 6)):]
        elif action == "truncate":
            text = text[:at]
        else:
            text = text.replace(": ", ": 00", 1)
    return draw(st.sampled_from(["", "Sure! ", "```json\n"])) + text


def _only_refuses(parse, text: str) -> None:
    try:
        parse(text)
    except OutputRejected as refusal:
        assert refusal.reason


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_replies())
def test_mutated_and_truncated_replies_parse_or_are_refused(text):
    _only_refuses(lambda t: parse_json_object(t, required=("query",), strings=("hard_negative",)), text)
    _only_refuses(check_answer, text)
    _only_refuses(parse_string_list, text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_is_refused(text):
    _only_refuses(lambda t: parse_json_object(t, required=("query",)), text)
    _only_refuses(parse_string_list, text)
    _only_refuses(check_answer, text)


def test_the_leading_zero_reply_keeps_its_query_and_notes_the_repair():
    query, negative, repaired, notes = check_answer(LEADING_ZERO_REPLY)
    assert query == "How to create a new version of a recipe ..."
    assert negative == "..."
    assert repaired and "leading_zero" in notes


@pytest.mark.parametrize("text", ["[" * 100_000, '{"query": ' + "[" * 100_000, '{"query": "x", "n": ' + "9" * 5000,
                                  '{"query": "x", "n": ' + "1" * 5000 + "}", '["a", ' + "[" * 100_000])
def test_deep_nesting_and_huge_numbers_are_refused_or_repaired(text):
    _only_refuses(lambda t: parse_json_object(t, required=("query",)), text)
    _only_refuses(parse_string_list, text)
