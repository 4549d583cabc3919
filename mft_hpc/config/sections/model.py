from __future__ import annotations

from pydantic import Field

from mft_hpc.config.sections.base import Section


class ModelSection(Section):
    path: str = Field(description="HF causal LM directory (must exist); a Qwen-1 checkpoint (model_type qwen, "
                                  "qwen.tiktoken) is imported to native Qwen2 once, into import_cache")
    trust_remote_code: bool = Field(False, description="run the model directory's own code (not for Qwen-1: it is "
                                                       "imported to native Qwen2; its code cannot run on transformers 5)")
    import_cache: str | None = Field(None, description="where Qwen-1 checkpoints are imported, keyed by content hash "
                                                       "(default: <run.root>/model-cache)")
    imported_from: str | None = Field(None, description="set by mft-hpc run: the Qwen-1 directory that model.path "
                                                        "(then its native import) was made from")
