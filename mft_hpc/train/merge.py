"""Merge the trained adapter into the base model: a standalone HF directory ready for generation.

The adapter is always merged onto a full-precision load of the base (also after QLoRA: merging into
4-bit weights rounds them, and on CPU can merge wrong weights after a repack). generation_config:
eos and pad are <|im_end|>, greedy, and no max_new_tokens/max_length left over from the base.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mft_hpc.config.schema import Config
from mft_hpc.errors import UserError
from mft_hpc.rundir import is_done, mark_done
from mft_hpc.tasks.names import IM_END



def _generation_config(model, eos_id: int):
    from transformers import GenerationConfig

    generation = GenerationConfig(
        eos_token_id=eos_id, pad_token_id=eos_id, do_sample=False, num_beams=1,
        bos_token_id=getattr(model.config, "bos_token_id", None),
    )
    return generation


def merge_adapter(config: Config, adapter_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    import torch
    from transformers import AutoModelForCausalLM

    from mft_hpc.train.model_loading import load_tokenizer

    out = Path(out_dir)
    if is_done(out):
        return out
    dtype = torch.bfloat16 if config.train.merge_dtype == "bf16" else torch.float32
    tokenizer = load_tokenizer(config)
    eos_id = tokenizer.convert_tokens_to_ids(IM_END)
    if eos_id is None or eos_id == getattr(tokenizer, "unk_token_id", None):
        raise UserError(f"model.path: tokenizer of {config.model.path} has no {IM_END} token")
    remote = config.model.trust_remote_code
    if config.train.peft == "none":  # full fine-tuning: the "adapter" is the whole model
        model = AutoModelForCausalLM.from_pretrained(adapter_dir, dtype=dtype, trust_remote_code=remote)
    else:
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(config.model.path, dtype=dtype, trust_remote_code=remote)
        model = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    model.config.eos_token_id = eos_id
    model.config.pad_token_id = eos_id
    model.config.use_cache = True
    model.generation_config = _generation_config(model, eos_id)
    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    mark_done(out, {"adapter": str(adapter_dir), "dtype": config.train.merge_dtype})
    return out
