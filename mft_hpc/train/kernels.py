"""Which kernels a training run uses: the attention implementation, TF32 matmuls, Liger's fused
RMSNorm/SwiGLU/RoPE (and, in ``loss.py``, its fused linear cross-entropy).

Every fast kernel has a plain-torch fallback, so a CPU run (tests, CI) and a GPU without Liger train the
same model; what was chosen is returned so the run can record it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys

from mft_hpc.config.schema import Config
from mft_hpc.errors import UserError

log = logging.getLogger(__name__)

LIGER_KEY = "train.liger"


def attn_implementation(config: Config, cuda: bool) -> str | None:
    """The ``attn_implementation`` to load the model with (None: the model's default).

    Unset + pack mode on a GPU: ``torch_varlen`` (torch's own flash varlen kernel: no dense [T,T] mask,
    no work across samples). Our kernel is registered with transformers whenever it is named.
    """
    impl = config.train.attn_implementation
    if impl is None and cuda and config.data.mode == "pack":
        impl = "torch_varlen"
    if impl == "torch_varlen":
        from mft_hpc.train.varlen_kernel import register_torch_varlen

        register_torch_varlen()
    return impl


def enable_tf32(config: Config) -> bool:
    """TF32 for fp32 matmuls/convolutions (LoRA's fp32 pieces, fp32 runs) on Ampere and newer."""
    import torch

    if not (config.train.tf32 and torch.cuda.is_available()):
        return False
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return True


LIGER_MIN_VERSION = (0, 8, 2)  # first release with per-token reduction="none" gradients in fused linear-CE


@functools.lru_cache(maxsize=1)
def liger_available() -> bool:
    """liger-kernel importable and new enough (older fused linear-CE mis-scales our per-token losses)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = tuple(int(part) for part in version("liger-kernel").split(".")[:3] if part.isdigit())
    except PackageNotFoundError:
        return False
    if installed < LIGER_MIN_VERSION:
        log.warning("liger-kernel %s is older than %s: not used", installed, LIGER_MIN_VERSION)
        return False
    try:
        import liger_kernel.transformers  # noqa: F401
    except Exception:  # ImportError, or triton failing to initialise
        return False
    return True


def apply_liger(config: Config, model) -> list[str]:
    """Patch ``model`` (before PEFT wraps it) with Liger's RMSNorm, SwiGLU and RoPE; returns what was
    patched ([] for the torch fallback). ``train.liger``: null = when available on CUDA, true = required,
    false = never."""
    import torch

    wanted = config.train.liger
    if wanted is False:
        return []
    usable = torch.cuda.is_available() and liger_available()
    if not usable:
        if wanted:
            raise UserError(f"{LIGER_KEY}: true needs CUDA and liger-kernel (requirements/gpu.txt); "
                            f"cuda={torch.cuda.is_available()}, liger importable={liger_available()}")
        return []
    from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN

    model_type = getattr(model.config, "model_type", None)
    apply = MODEL_TYPE_TO_APPLY_LIGER_FN.get(model_type)
    if apply is None:
        if wanted:
            raise UserError(f"{LIGER_KEY}: Liger has no kernels for model type {model_type!r}")
        return []
    accepted = inspect.signature(apply).parameters
    options = {name: value for name, value in (("rope", True), ("rms_norm", True), ("swiglu", True),
                                               ("cross_entropy", False), ("fused_linear_cross_entropy", False))
               if name in accepted}
    modeling = sys.modules[type(model).__module__]
    classes = {name: value for name, value in vars(modeling).items() if isinstance(value, type)}
    try:  # the fused linear-CE is called by our loss on selected tokens only, never through the model
        apply(model=model, **options)
    except Exception as exc:  # an API change or a module layout Liger does not expect: keep torch's kernels
        if wanted:
            raise UserError(f"{LIGER_KEY}: Liger could not patch {type(model).__name__}: {exc}") from exc
        log.warning("Liger kernels not applied to %s (%s); using torch's", type(model).__name__, exc)
        return []
    finally:  # this instance is patched; models built later in this process (merge, tests) keep torch's
        for name, value in classes.items():  # classes (Liger's RoPE stays a module-level function swap)
            setattr(modeling, name, value)
    return [name for name, value in options.items() if value]


def check_packed_isolation(config: Config, model) -> str | None:
    """At start-up, before any step: the isolation strategy packed micro-batches will use with this
    model, or a UserError naming ``train.attn_implementation`` when samples could see each other (a
    model that does not dispatch attention through transformers' AttentionInterface, e.g. remote code,
    may drop a 4D mask or the varlen kwargs without a word). None in padding mode."""
    from transformers import PreTrainedModel

    from mft_hpc.data.attention import ISOLATION_KEY, packing_strategy
    from mft_hpc.train.unwrap import hf_model

    if config.data.mode != "pack":
        return None
    inner = hf_model(model)
    impl = getattr(getattr(inner, "config", None), "_attn_implementation", None)
    strategy = packing_strategy(impl)
    if not (isinstance(inner, PreTrainedModel) and getattr(inner, "_supports_attention_backend", False)):
        raise UserError(f"{ISOLATION_KEY}: {type(inner).__name__} does not dispatch attention through transformers' "
                        f"AttentionInterface, so {impl!r} cannot be made to keep packed samples apart; "
                        "use data.mode: padding (or a model transformers implements natively)")
    if strategy == "block_mask" and next(inner.parameters()).device.type == "cpu":
        raise UserError(f"{ISOLATION_KEY}: flex_attention has no backward on CPU (torch); use sdpa or torch_varlen")
    return strategy
