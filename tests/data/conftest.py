"""Fixtures for the data tests: the tiny ChatML BPE, the real Qwen-1 BPE, jsonl writers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dashscope

QWEN_TIKTOKEN = Path(dashscope.__file__).parent / "resources" / "qwen.tiktoken"


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


@pytest.fixture(scope="session")
def qwen_tokenizer():
    """Qwen-1's real BPE (qwen.tiktoken shipped in dashscope) with specials at 151643.."""
    from mft_hpc.data import qwen1_tiktoken

    return qwen1_tiktoken(QWEN_TIKTOKEN)


@pytest.fixture(params=["tiny", "qwen"])
def any_tokenizer(request):
    return request.getfixturevalue("tiny_tokenizer" if request.param == "tiny" else "qwen_tokenizer")


def write_jsonl(path: Path, records: list) -> Path:
    """Write records (dicts are JSON-encoded, strings written verbatim) one per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def chat(*turns: tuple[str, str]) -> dict:
    return {"chat_rounds": [{"role": role, "content": content} for role, content in turns]}
