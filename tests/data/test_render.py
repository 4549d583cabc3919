"""ChatML rendering against an independent reference: the full text encoded with specials allowed."""

from __future__ import annotations

import pytest

from mft_hpc.data import ChatMLRenderer, as_codec
from mft_hpc.data.records import parse_line

ROLE = {"system": "system", "human": "user", "bot": "assistant"}


def reference(codec, turns):
    """Text of MFTCoder's template; the expected mask marks bot content + its <|im_end|>."""
    parts = [f"<|im_start|>{ROLE[role]}\n{content}<|im_end|>" for role, content in turns]
    return "\n".join(parts)


def decode(codec, ids):
    return codec.decode(list(ids))


CASES = {
    "multi_round_system": (("system", "You are a coder."), ("human", "Add 1 and 2."), ("bot", "3"),
                            ("human", "Now in Python?"), ("bot", "def f():\n    return 1 + 2\n")),
    "no_system": (("human", "hello"), ("bot", "world")),
    "empty_bot": (("human", "say nothing"), ("bot", "")),
    "unicode": (("human", "写一个函数 — naïve café 🚀"), ("bot", "def π():\n    return '日本語'")),
    "literal_specials": (("human", "what is <|im_end|>?"), ("bot", "it is <|im_start|>assistant\n text <|endoftext|>")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_matches_template_and_mask(any_tokenizer, case):
    codec = as_codec(any_tokenizer)
    turns = CASES[case]
    out = ChatMLRenderer(codec).render(turns)
    assert out.status == "ok"
    assert len(out.input_ids) == len(out.loss_mask)
    # the decoded tokens reproduce the template exactly (content never rewritten)
    assert decode(codec, out.input_ids) == reference(codec, turns)
    assert out.input_ids[-1] == codec.im_end and out.input_ids[0] == codec.im_start
    # exactly the specials of the template are control tokens; literal ones in content stay text
    n_rounds = len(turns)
    assert sum(t == codec.im_start for t in out.input_ids) == n_rounds
    assert sum(t == codec.im_end for t in out.input_ids) == n_rounds
    # supervised tokens decode to bot content + <|im_end|>, one span per bot turn
    spans, current = [], []
    for tok, m in zip(out.input_ids, out.loss_mask):
        if m:
            current.append(tok)
        elif current:
            spans.append(current)
            current = []
    if current:
        spans.append(current)
    bot_contents = [content for role, content in turns if role == "bot"]
    assert [decode(codec, span) for span in spans] == [c + "<|im_end|>" for c in bot_contents]


def test_qwen_special_ids(qwen_tokenizer):
    codec = as_codec(qwen_tokenizer)
    assert (codec.pad_id, codec.im_start, codec.im_end) == (151643, 151644, 151645)
    out = ChatMLRenderer(codec).render((("human", "hi"), ("bot", "yo")))
    # <|im_start|>user\n hi <|im_end|> \n <|im_start|>assistant\n yo <|im_end|>
    assert out.input_ids == qwen_tokenizer.encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>",
                                                  allowed_special="all")


def test_literal_special_in_content_is_text(any_tokenizer):
    codec = as_codec(any_tokenizer)
    out = ChatMLRenderer(codec).render((("human", "x"), ("bot", "<|im_end|>")))
    bot_ids = [t for t, m in zip(out.input_ids, out.loss_mask) if m]
    assert len(bot_ids) > 2 and bot_ids.count(codec.im_end) == 1 and bot_ids[-1] == codec.im_end


def test_overlong_truncate_keeps_last_complete_supervised_span(any_tokenizer):
    codec = as_codec(any_tokenizer)
    turns = (("human", "q1"), ("bot", "a1"), ("human", "q2 " * 50), ("bot", "a2 " * 50))
    full = ChatMLRenderer(codec).render(turns)
    first = ChatMLRenderer(codec).render(turns[:2])
    limit = len(first.input_ids) + 5
    assert len(full.input_ids) > limit
    cut = ChatMLRenderer(codec, seq_length=limit, overlong="truncate").render(turns)
    assert cut.status == "truncated"
    assert cut.input_ids == first.input_ids and cut.loss_mask == first.loss_mask
    dropped = ChatMLRenderer(codec, seq_length=limit, overlong="drop").render(turns)
    assert dropped.status == "dropped" and dropped.input_ids == []
    # nothing supervised fits: dropped even in truncate mode
    tiny = ChatMLRenderer(codec, seq_length=4, overlong="truncate").render(turns)
    assert tiny.status == "dropped"


def test_prompt_answer_renders_like_chat(tiny_tokenizer):
    codec = as_codec(tiny_tokenizer)
    renderer = ChatMLRenderer(codec)
    a = renderer.render(parse_line('{"system": "s", "prompt": "p", "answer": "a"}'))
    b = renderer.render(parse_line('{"chat_rounds": [{"role": "system", "content": "s"}, '
                                   '{"role": "user", "content": "p"}, {"role": "assistant", "content": "a"}]}'))
    assert a == b
