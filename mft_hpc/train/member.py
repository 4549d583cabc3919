"""``train_member``: train one sweep member end to end (data → model → loop → adapter → merged model).

Run by every task of the training job (1 process, or nodes × tasks_per_node under Slurm); the
function sets up the process group itself. Reruns skip finished work: a finished adapter is not
retrained, a finished merge is not redone, and an interrupted run resumes from its last checkpoint.
While training, a preemption/time-limit signal makes the run checkpoint after the current optimizer
step before submitit requeues it (``preemption.PreemptionGuard``).

    <member>/train/
        checkpoints/step_N/ (+ .done)   accelerate/DeepSpeed state, adapter/, trainer_state.json
        adapter/ (+ .done)              the final adapter (the best evaluated one, else the last)
        merged/ (+ .done)               standalone HF model + tokenizer + generation_config.json
        metrics.jsonl tensorboard/ loss_curve.png ranks/rank_K.json
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Callable

from mft_hpc.config.schema import Config
from mft_hpc.rundir import MemberDir, atomic_write_json, done_info, is_done, mark_done
from mft_hpc.train.checkpoint import ADAPTER_DIR, Checkpoints
from mft_hpc.train.merge import merge_adapter
from mft_hpc.train.metrics import plot_loss_curve
from mft_hpc.train.preemption import PreemptionGuard
from mft_hpc.train.state import TrainerState

RENDEZVOUS_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _record_rank(out: Path, accelerator, model, kernels: dict) -> None:
    """What this worker really runs (tests and the dashboard read it)."""
    engine_stage = model.zero_optimization_stage() if hasattr(model, "zero_optimization_stage") else None
    import torch

    info = {"rank": accelerator.process_index, "num_processes": accelerator.num_processes,
            "distributed_type": str(accelerator.distributed_type), "engine": type(model).__name__,
            "zero_stage": engine_stage, "host": socket.gethostname(),
            "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
            "world_size": torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1,
            "quantized_layers": sum(type(m).__module__.startswith("bitsandbytes") for m in model.modules()),
            "adapter_dtype": next((str(p.dtype).removeprefix("torch.") for p in model.parameters() if p.requires_grad),
                                  None),
            "pid": os.getpid(), "kernels": kernels}
    atomic_write_json(out / "ranks" / f"rank_{accelerator.process_index}.json", info)


def _teardown(added_env: list[str]) -> None:
    """Let one process run several trainings (tests): accelerate's singletons are reset; the process
    group stays (DeepSpeed caches its groups, and a new run reuses an initialised one)."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    for name in added_env:
        os.environ.pop(name, None)


def _publish_adapter(out: Path, state: TrainerState) -> None:
    checkpoints = Checkpoints(out / "checkpoints")
    chosen = checkpoints.path(state.best_step) if state.best_step is not None else checkpoints.latest()
    if chosen is None or not is_done(chosen):
        chosen = checkpoints.latest()
    final = out / ADAPTER_DIR
    tmp = out / f".tmp-{ADAPTER_DIR}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(chosen / ADAPTER_DIR, tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    mark_done(final, {"from_step": int(chosen.name.split("_")[1]), "last_step": state.step,
                      "best_step": state.best_step, "best_valid_loss": state.best_eval,
                      "stopped_early": state.stopped_early, "skipped_nonfinite": state.skipped_nonfinite})


def _train(config: Config, member: MemberDir, on_step, preemption: PreemptionGuard | None) -> None:
    import torch
    from accelerate.utils import set_seed

    from mft_hpc.data import build_datasets
    from mft_hpc.train.checkpointing import decide_checkpointing
    from mft_hpc.train.distributed import make_accelerator, use_bf16
    from mft_hpc.train.kernels import enable_tf32
    from mft_hpc.train.loop import TrainLoop
    from mft_hpc.train.model_loading import load_tokenizer, load_trainable_model

    out = member.train
    added_env = [name for name in RENDEZVOUS_VARS if name not in os.environ]
    accelerator = make_accelerator(config.train)
    guard = preemption if preemption is not None else PreemptionGuard.for_current_job()
    try:
        with guard:  # a signal while loading defers to the first step too (the guard's watchdog bounds it)
            set_seed(config.train.seed)
            tokenizer = load_tokenizer(config)
            with accelerator.main_process_first():
                bundle = build_datasets(config.data, tokenizer, member.data_cache, show_progress=False)
            kernels = {"tf32": enable_tf32(config)}
            model = load_trainable_model(config, use_bf16(config.train), report=kernels)
            trainable = [p for p in model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(trainable, lr=config.train.learning_rate,
                                          betas=tuple(config.train.adam_betas), weight_decay=config.train.weight_decay)
            model, optimizer = accelerator.prepare(model, optimizer)
            kernels["gradient_checkpointing"] = decide_checkpointing(config, model, accelerator.num_processes)
            _record_rank(out, accelerator, model, kernels)
            state = TrainLoop(config, accelerator, model, optimizer, bundle, out, on_step, guard).run()
        if accelerator.is_main_process:
            _publish_adapter(out, state)
            plot_loss_curve(member.train_metrics, out / "loss_curve.png")
        accelerator.wait_for_everyone()
    finally:
        _teardown(added_env)


def _global_rank() -> int:
    if os.environ.get("SUBMITIT_EXECUTOR"):
        import submitit

        return submitit.JobEnvironment().global_rank
    return int(os.environ.get("RANK", "0"))


def train_member(config: Config, member_dir: str | os.PathLike, *,
                 on_step: Callable[[TrainerState], None] | None = None,
                 preemption: PreemptionGuard | None = None) -> Path:
    """Train (or resume) the member in ``member_dir``; returns the merged model directory.

    ``on_step(state)`` is called after every optimizer step (and its checkpoint) on every rank.
    ``preemption``: the signal guard (default: ``PreemptionGuard.for_current_job()``, inert outside
    a submitit job).
    """
    member = MemberDir(Path(member_dir))
    if is_done(member.merged_model):
        return member.merged_model
    if not is_done(member.adapter):
        _train(config, member, on_step, preemption)
    if _global_rank() == 0:
        merge_adapter(config, member.adapter, member.merged_model)
        atomic_write_json(member.train_result, done_info(member.adapter))
    return member.merged_model
