"""The converted fast tokenizer gives Qwen-1's ids: tiktoken + Qwen-1's rules, on 12,000 varied strings.

Two rules, both checked: data rendering encodes special-token strings as text (``encode_ordinary``,
the fast tokenizer with ``split_special_tokens``), and Qwen-1's own tokenizer (generation prompts)
reads them as control tokens (``allowed_special="all"``); both NFC-normalise first.
"""

from __future__ import annotations

import random
import unicodedata

import pytest

from mft_hpc.data.codec import HFCodec, TiktokenCodec, qwen1_tiktoken

N_STRINGS = 12_000

SNIPPETS = {
    "python": ['def add(a, b):\n    """Sum."""\n    return a + b\n', "for i in range(10):\n\tprint(f'{i:>3}')\n",
               "class Foo(Bar):\n    x: int = 0x1F  # it's\n", "lambda *args, **kw: [x**2 for x in args if x]"],
    "cpp": ["#include <vector>\nint main() {\n  std::vector<int> v{1,2,3};\n  return v[0] >> 1;\n}\n",
            "template <typename T> T max(T a, T b) { return a > b ? a : b; }", "auto it = m.find(\"k\"); // C++17"],
    "java": ["public static void main(String[] args) {\n    System.out.println(\"Hello\");\n}\n",
             "List<Integer> xs = new ArrayList<>(); @Override public String toString() {}"],
    "javascript": ["const f = async (x) => { await fetch(`/api/${x}`); };\n", "let s = arr.map(v => v * 2).join(', ');",
                   "if (a === b && !c) { console.log('ok'); }"],
    "go": ["package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n", "x := make(map[string]int)\nfor k, v := range x {}"],
    "rust": ["fn main() {\n    let v: Vec<u8> = vec![1, 2];\n    println!(\"{:?}\", v);\n}\n", "impl<'a> Foo<'a> { fn x(&self) -> Option<&'a str> { None } }"],
}
CJK = ["你好，世界！", "这是一个测试。", "日本語のテキスト、カタカナ", "한국어 문장입니다", "中文English混合123", "（全角）【括号】"]
EMOJI = ["🙂", "👍🏽", "👨‍👩‍👧‍👦", "🇩🇪", "❤️", "🚀✨", "🤖"]
WHITESPACE = [" ", "  ", "    ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\n   \n", " \u00a0 ", "\u3000", "        \n"]
SPECIALS_AS_TEXT = ["<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|extra_0|>", "<|extra_204|>", "<|im_end|", "|>"]
MISC = ["'s", "'LL", "I'M", "don't", "3.14159", "1234567890", "e\u0301", "A\u030a", "ﬁ", "Ⅻ", "½", "x²", "\u200b", "ÿ",
        "\\n", "\"\"\"", "%d %s", "→ ≠ ≤", "Ελληνικά", "кириллица", "עברית", "العربية", "हिन्दी"]


def varied_strings(n: int, seed: int = 0) -> list[str]:
    """Strings mixing code in six languages, CJK, emoji, whitespace runs, special-token text, odd Unicode."""
    rng = random.Random(seed)
    code = [s for snippets in SNIPPETS.values() for s in snippets]
    pools = [code, CJK, EMOJI, WHITESPACE, SPECIALS_AS_TEXT, MISC]
    out = []
    for i in range(n):
        parts = []
        for _ in range(rng.randint(1, 6)):
            piece = rng.choice(rng.choice(pools))
            if rng.random() < 0.3:  # a random slice, to cut through words, escapes and multi-codepoint emoji
                a, b = sorted(rng.sample(range(len(piece) + 1), 2)) if len(piece) > 1 else (0, len(piece))
                piece = piece[a:b]
            parts.append(piece)
        text = "".join(parts)
        if i % 7 == 0:
            text = unicodedata.normalize("NFD", text)  # decomposed: both sides must normalise alike
        out.append(text)
    return out


@pytest.fixture(scope="module")
def both(imported_fixture, qwen1_fixture):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(imported_fixture), qwen1_tiktoken(qwen1_fixture / "qwen.tiktoken")


def test_strings_cover_what_the_issue_lists():
    texts = varied_strings(N_STRINGS)
    assert len(texts) >= 10_000 and len(set(texts)) > 8_000
    assert sum("<|im_end|>" in t for t in texts) > 300
    assert sum(any(c in t for c in "你日한") for t in texts) > 300 and sum("🙂" in t or "🚀" in t for t in texts) > 100
    assert sum("    " in t or "\t\t" in t for t in texts) > 300
    assert all(sum(s[:12] in t for t in texts) > 50 for snippets in SNIPPETS.values() for s in snippets)


def test_data_rendering_ids_are_identical(both):
    """Specials stay text: HFCodec (fast tokenizer) == TiktokenCodec (encode_ordinary after NFC)."""
    fast, encoding = both
    texts = varied_strings(N_STRINGS)
    fast_ids = HFCodec(fast).encode_texts(texts)
    tiktoken_ids = TiktokenCodec(encoding).encode_texts(texts)
    mismatches = [t for t, a, b in zip(texts, fast_ids, tiktoken_ids) if a != b]
    assert not mismatches, f"{len(mismatches)} differ, e.g. {mismatches[:3]!r}"
    assert all(i < 151643 for ids in fast_ids for i in ids)  # no control token from text


def test_qwen1_tokenizer_rules_are_identical(both):
    """Qwen-1's QWenTokenizer: NFC, then tiktoken with every special-token string allowed as a token."""
    fast, encoding = both
    texts = varied_strings(N_STRINGS, seed=1)
    fast_ids = fast(texts, add_special_tokens=False)["input_ids"]
    qwen1_ids = [encoding.encode(unicodedata.normalize("NFC", t), allowed_special="all") for t in texts]
    mismatches = [t for t, a, b in zip(texts, fast_ids, qwen1_ids) if a != b]
    assert not mismatches, f"{len(mismatches)} differ, e.g. {mismatches[:3]!r}"
    assert sum(151645 in ids for ids in fast_ids) > 300
    for ids in qwen1_ids[:2000]:
        assert fast.decode(ids) == encoding.decode(ids)
