"""The sandbox an evaluation uses, chosen from its config: the runtime, with the cached image by default.

Above runtime.py (how each runtime starts the worker) and image.py (where the built image is), so
neither needs the other's caller.
"""

from __future__ import annotations

from mft_hpc.config.sections.evaluate import EvaluateSection
from mft_hpc.evaluate.image import default_image
from mft_hpc.evaluate.runtime import Runtime, make_runtime, scratch_base


def runtime_from_config(eval_cfg: EvaluateSection) -> Runtime:
    image = eval_cfg.image
    if image is None and eval_cfg.runtime in ("apptainer", "singularity"):
        image = str(default_image())
    elif image is None and eval_cfg.runtime == "bwrap":
        image = str(default_image(sandbox=True))
    return make_runtime(eval_cfg.runtime, image, eval_cfg.unsafe_host)


def evaluation_argv(eval_cfg: EvaluateSection, workers: int) -> list[str]:
    """The argv an evaluation element starts its sandbox with, rendered without running anything.

    Exactly what mft_hpc.evaluate.batch runs for a batch of ``workers`` parallel programs (image,
    the image's worker, binds, no network, limits as this machine's uid and cgroups allow), except the scratch
    directory: a fresh temporary directory per batch, shown here as ``mft-hpc-eval.XXXXXXXX``.
    Raises UserError where the element would fail to start the sandbox (no binary, no image).
    """
    scratch = scratch_base() / "mft-hpc-eval.XXXXXXXX" / "scratch"
    return runtime_from_config(eval_cfg).argv(scratch, workers, [])
