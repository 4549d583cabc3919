from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from mft_hpc.config.sections.base import Section
from mft_hpc.tasks.names import IM_END, TASK_NAMES, PromptStyle, uses_chatml

# The name is part of file names the grader splits on '_' (generations_{task}_{model}.json).
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
GREEDY_ONLY = "decoding is greedy only (the competition requires do_sample=False, num_beams=1, num_return_sequences=1)"


class VllmSection(Section):
    """Engine options of the vllm backend (vllm.LLM keyword arguments of the same names)."""

    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description=(
        "fraction of GPU memory vLLM may take (vllm-cpu: of the node's RAM, unless kv_cache_memory_bytes is set)"))
    tensor_parallel_size: int = Field(1, ge=1, description=(
        "GPUs one engine spans (give generation elements as many: cluster.stages.generate.gpus_per_node)"))
    max_num_seqs: int | None = Field(None, ge=1, description="sequences decoded at once (default: vLLM's for the GPU)")
    enable_prefix_caching: bool = Field(True, description="reuse the KV cache of shared prompt prefixes")
    enforce_eager: bool = Field(False, description="no CUDA graphs (faster start, slower decode)")
    kv_cache_memory_bytes: int | None = Field(None, ge=1, description=(
        "KV cache size in bytes instead of the gpu_memory_utilization rule (set it for vllm-cpu on a shared node)"))


def check_model_name(value: str) -> str:
    if not MODEL_NAME.match(value or ""):
        raise ValueError(f"bad model name {value!r}: use letters, digits, '.', '+' and '-' only (no '_', '/' or spaces)")
    return value


class GenerateSection(Section):
    enabled: bool = True
    benchmarks: str = Field("../shared/benchmarks", description="benchmark data directory (must exist)")
    tasks: list[str] = Field(default_factory=lambda: list(TASK_NAMES))
    limit: int | None = Field(None, ge=1, description="first N problems per task (a partial run)")
    backend: Literal["hf", "vllm", "exact"] = "hf"
    batch_size: int = Field(32, ge=1)
    continuous_batching: bool = Field(False, description=(
        "hf backend: transformers' continuous batching (paged attention); a request is cancelled as soon as "
        "the harness's stop rule fires"))
    tasks_per_element: int = Field(1, ge=1, description=(
        "tasks (or shards) one generation array element runs with one model/engine load: 13 runs the suite "
        "in one element"))
    vllm: VllmSection = Field(default_factory=VllmSection, description="vllm backend engine options")
    max_length_generation: int = Field(2000, ge=1, description="prompt + generated tokens, as the harness")
    max_new_tokens: int | None = Field(None, ge=1, description="extra cap on generated tokens (default: none, harness rule)")
    prompt_style: PromptStyle = "competition"
    prompt_style_per_task: dict[str, PromptStyle] = Field(default_factory=dict, description="task -> style override")
    system_prompt: str | None = None
    # MFTCoder training renders "<|im_start|>assistant\n" and never supervises that "\n"; the competition's
    # suffix stops at "assistant", so a fine-tuned model must invent the newline itself.
    assistant_newline: bool = Field(False, description=(
        "end the ChatML suffix with 'assistant' + newline, the header training renders (default: the "
        "competition's exact input); a no-op for tasks without ChatML (raw style, HumanEvalPack under competition)"))
    assistant_newline_per_task: dict[str, bool] = Field(default_factory=dict, description=(
        "task -> assistant_newline override; true for a task without ChatML is an error"))
    eos: str = Field(IM_END, description="end-of-turn text: a stop word and removed from outputs (--eos)")
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    shard_size: int | None = Field(None, ge=1)
    model_name: str | None = Field(None, description="name in generations_{model}; default: run name + member")
    # Greedy is the only allowed decoding: these exist so that asking for sampling is a clear error.
    do_sample: Literal[False] = False
    num_beams: Literal[1] = 1
    num_return_sequences: Literal[1] = 1
    temperature: None = None
    top_p: None = None
    top_k: None = None

    @field_validator("do_sample", "num_beams", "num_return_sequences", "temperature", "top_p", "top_k", mode="before")
    @classmethod
    def _greedy_only(cls, value: Any, info) -> Any:
        allowed = {"do_sample": False, "num_beams": 1, "num_return_sequences": 1}.get(info.field_name)
        if value is not None and not (value == allowed and type(value) is type(allowed)):
            raise ValueError(f"{info.field_name}={value!r} is not allowed: {GREEDY_ONLY}")
        return value

    @field_validator("tasks", "prompt_style_per_task", "assistant_newline_per_task")
    @classmethod
    def _known_tasks(cls, value):
        """Task lists and per-task maps name only the 13 competition tasks."""
        unknown = [task for task in value if task not in TASK_NAMES]
        if unknown:
            raise ValueError(f"unknown task(s) {', '.join(unknown)}; expected some of: {', '.join(TASK_NAMES)}")
        return value

    @field_validator("assistant_newline_per_task")
    @classmethod
    def _newline_needs_chatml(cls, value: dict[str, bool], info) -> dict[str, bool]:
        """Asked for explicitly, the newline must have a ChatML header to end (the global key is a no-op)."""
        if "prompt_style" not in info.data or "prompt_style_per_task" not in info.data:
            return value  # a style key is already invalid and reported
        style_of = {task: info.data["prompt_style_per_task"].get(task, info.data["prompt_style"]) for task in value}
        bad = [f"{task} (prompt style {style_of[task]})" for task, on in value.items()
               if on and not uses_chatml(task, style_of[task])]
        if bad:
            raise ValueError(f"true needs a ChatML suffix, and {', '.join(bad)} has none (only mbpp under "
                             "competition and every task under chatml are ChatML-wrapped); set the task's prompt "
                             "style to chatml or drop the entry")
        return value

    @field_validator("model_name")
    @classmethod
    def _model_name(cls, value: str | None) -> str | None:
        return None if value is None else check_model_name(value)

    def style_of(self, task: str) -> str:
        return self.prompt_style_per_task.get(task, self.prompt_style)

    def assistant_newline_of(self, task: str) -> bool:
        """The effective setting: False where the task's style has no ChatML suffix."""
        wanted = self.assistant_newline_per_task.get(task, self.assistant_newline)
        return wanted and uses_chatml(task, self.style_of(task))

    def prompt_settings(self, task: str) -> dict:
        """How ``task``'s model input is built: keyword arguments of model_input/harness_strings, and
        what the raw and generations ``.done`` markers record."""
        return {"style": self.style_of(task), "system_prompt": self.system_prompt,
                "assistant_newline": self.assistant_newline_of(task)}
