"""The model under the training wrappers, for code that needs its config or its modules."""

from __future__ import annotations


def hf_model(model):
    """The transformers model under PEFT / DeepSpeed / accelerate wrappers."""
    model = getattr(model, "module", model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model
