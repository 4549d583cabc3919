"""Generation fixtures: a tiny model vLLM's CPU attention accepts, whose outputs end in every way."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def stopping_model_dir(tmp_path_factory) -> Path:
    """A tiny Qwen2 with head size 64 (vLLM's CPU attention refuses 16) whose random outputs end by
    eos, by the brace/indent rules, by stop words and by the token cap (emphasize_stop_tokens)."""
    from mft_hpc.model.tiny import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("models") / "tiny-qwen2-hd64", hidden_size=128, heads=2,
                            kv_heads=1, stop_token_scale=2.0)
