"""The training loop: micro-batches → case3/weighted loss → one optimizer step per G micro-batches,
with evaluation, early stopping, CoBa re-weighting, checkpoints and exact resume.

Everything the next step depends on (weights, optimizer, RNG, data position, lr step, early-stopping
counters, CoBa history) is in the checkpoint, so a resumed run reproduces the same loss curve.
A preemption/time-limit signal (``PreemptionGuard``) is acted on only between optimizer steps: every
rank learns of it in the same micro-batch all-reduce, they save together after that step, and the
requeue signal is then handed to submitit.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch

from mft_hpc.config.schema import Config
from mft_hpc.errors import UserError
from mft_hpc.train.checkpoint import Checkpoints
from mft_hpc.train.coba import coba_weights
from mft_hpc.train.flops import ModelFlops, batch_sample_lengths, causal_pairs, mfu, peak_flops
from mft_hpc.train.kernels import check_packed_isolation
from mft_hpc.train.loss import combine_tasks, supervised_token_losses, task_sums
from mft_hpc.train.metrics import MetricsLog, memory_gib
from mft_hpc.train.preemption import PreemptionGuard
from mft_hpc.train.schedule import lr_at
from mft_hpc.train.state import TrainerState
from mft_hpc.train.unwrap import hf_model


def _all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        torch.distributed.all_reduce(tensor, op=getattr(torch.distributed.ReduceOp, op.upper()))
    return tensor


def static_weights(config: Config, task_names: list[str]) -> list[float] | None:
    if config.train.loss_mode != "task_weights":
        return None
    unknown = sorted(set(config.train.task_weights) - set(task_names))
    if unknown:
        raise UserError(f"train.task_weights: unknown task(s) {', '.join(unknown)}; tasks are {', '.join(task_names)}")
    return [float(config.train.task_weights.get(name, 1.0)) for name in task_names]


class TrainLoop:
    def __init__(self, config: Config, accelerator, model, optimizer, bundle, out_dir,
                 on_step: Callable[[TrainerState], None] | None = None,
                 preemption: PreemptionGuard | None = None):
        self.config, self.train = config, config.train
        self.accelerator, self.model, self.optimizer = accelerator, model, optimizer
        self.bundle, self.task_names = bundle, list(bundle.task_names)
        self.on_step = on_step or (lambda state: None)
        self.preemption = preemption or PreemptionGuard(0, active=False)
        self._save_pending = self._requeue_pending = False  # agreed by all ranks, acted on after the step
        self._saved_step: int | None = None
        self.checkpoints = Checkpoints(out_dir / "checkpoints")
        self.metrics = MetricsLog(out_dir, enabled=accelerator.is_main_process)
        self.device = accelerator.device
        self.rank, self.world = accelerator.process_index, accelerator.num_processes
        self.isolation = check_packed_isolation(config, model)  # refuse before any step if samples could mix
        self.flops = ModelFlops.of(model)
        self.peak_flops = peak_flops(self.train.mfu_peak_tflops)
        self.batches_per_epoch = len(self._train_loader(0, 0))
        steps_per_epoch = self.batches_per_epoch // self.train.gradient_accumulation_steps
        if steps_per_epoch == 0:
            raise UserError(f"data: {len(bundle.train)} training rows give no optimizer step with "
                            f"micro_batch_size {self.train.micro_batch_size} x gradient_accumulation_steps "
                            f"{self.train.gradient_accumulation_steps} x {self.world} processes")
        self.total_steps = self.train.max_steps or self.train.epochs * steps_per_epoch

    # -- data -------------------------------------------------------------------------------
    def _train_loader(self, epoch: int, start: int):
        from mft_hpc.data import make_loader

        return make_loader(self.bundle.train, self.config.data, self.train.micro_batch_size, self.rank, self.world,
                           epoch=epoch, seed=self.train.seed, start_step=start)

    def _valid_loader(self):
        from mft_hpc.data import make_loader

        return make_loader(self.bundle.valid, self.config.data, self.train.micro_batch_size, self.rank, self.world,
                           epoch=0, seed=self.train.seed, shuffle=False)

    # -- one forward ------------------------------------------------------------------------
    def _forward(self, batch: dict, weights: torch.Tensor | None):
        from mft_hpc.data import model_inputs

        inputs = model_inputs(batch, hf_model(self.model))
        token_losses, rows = supervised_token_losses(self.model, inputs, batch["input_ids"], batch["loss_mask"],
                                                     fused=self.train.liger is not False)
        sums, counts = task_sums(token_losses, rows, batch["task_ids"], len(self.task_names))
        return combine_tasks(sums, counts, weights), sums.detach(), counts.detach()

    def _weights(self, state: TrainerState) -> torch.Tensor | None:
        return None if state.task_weights is None else torch.tensor(state.task_weights, device=self.device)

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self) -> tuple[float, list[float]]:
        """Token-weighted validation loss per task (all ranks) and their mean over tasks."""
        self.model.eval()
        for module in self.model.modules():  # bitsandbytes CPU bug: eval forwards repack 4-bit weights
            if type(module).__name__ == "Linear4bit" and not torch.cuda.is_available():
                module.train()
        sums = torch.zeros(len(self.task_names), device=self.device)
        counts = torch.zeros_like(sums)
        with torch.no_grad():
            for index, batch in enumerate(self._valid_loader()):
                if self.train.eval_max_batches and index >= self.train.eval_max_batches:
                    break
                _, batch_sums, batch_counts = self._forward(batch, None)
                sums += batch_sums
                counts += batch_counts
        self.model.train()
        _all_reduce(sums), _all_reduce(counts)
        per_task = [(s / c) if c > 0 else float("nan") for s, c in zip(sums.tolist(), counts.tolist())]
        present = [v for v in per_task if not math.isnan(v)]
        return (sum(present) / len(present) if present else float("nan")), per_task

    def _eval_and_track(self, state: TrainerState) -> bool:
        """Evaluate, update best/patience/CoBa; True when this step is the new best."""
        overall, per_task = self.evaluate()
        state.valid_history.append(per_task)
        improved = not math.isnan(overall) and (state.best_eval is None or overall < state.best_eval)
        if improved:
            state.best_eval, state.best_step, state.evals_without_improvement = overall, state.step, 0
        else:
            state.evals_without_improvement += 1
        patience = self.train.early_stopping_patience
        if patience and state.evals_without_improvement >= patience:
            state.stopped_early = True
        if self.train.loss_mode == "coba":
            first = state.valid_history[0]
            normalised = [[v / f if f and not math.isnan(v) else 1.0 for v, f in zip(row, first)]
                          for row in state.valid_history]
            state.task_weights = coba_weights(normalised, self.train.coba_history, self.train.coba_temperature)
        self.metrics.log({"kind": "eval", "step": state.step, "valid_loss": overall,
                          "valid_loss_per_task": dict(zip(self.task_names, per_task)),
                          "best_step": state.best_step, "task_weights": state.task_weights})
        return improved

    # -- the loop ---------------------------------------------------------------------------
    def _start_state(self) -> TrainerState:
        if self.accelerator.is_main_process:
            self.checkpoints.remove_partial()
        self.accelerator.wait_for_everyone()
        latest = self.checkpoints.latest()
        if latest is None:
            state = TrainerState(task_weights=static_weights(self.config, self.task_names))
            self.metrics.log({"kind": "start", "step": 0, "total_steps": self.total_steps, "world_size": self.world,
                              "time": time.time()})
            if self.train.loss_mode == "coba" and len(self.bundle.valid):
                self._eval_and_track(state)  # CoBa normalises by the starting validation losses
                state.best_eval, state.best_step, state.evals_without_improvement = None, None, 0
            return state
        state = self.checkpoints.load(self.accelerator, latest)
        self.metrics.truncate_after(state.step)
        self.metrics.log({"kind": "start", "step": state.step, "resumed_from": latest.name,
                          "total_steps": self.total_steps, "world_size": self.world, "time": time.time()})
        return state

    def run(self) -> TrainerState:
        state = self._start_state()
        has_valid = len(self.bundle.valid) > 0
        window = _Window(len(self.task_names), self.device)
        while state.step < self.total_steps and not state.stopped_early:
            trained_this_epoch, started_at = False, state.batches_in_epoch
            for batch in self._train_loader(state.epoch, state.batches_in_epoch):
                state.batches_in_epoch += 1
                loss, sums, counts = self._forward(batch, self._weights(state))
                if not self._agree(loss):  # NaN/inf on any rank: every rank skips it, nothing back-propagated
                    state.skipped_nonfinite += 1
                    continue
                trained_this_epoch = True
                with self.accelerator.accumulate(self.model):
                    lr = lr_at(state.step, peak=self.train.learning_rate, min_lr=self.train.min_lr,
                               warmup=self.train.warmup_steps, total=self.total_steps)
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr
                    self.accelerator.backward(loss)
                    self.optimizer.step()
                    self.optimizer.zero_grad()
                window.add(loss.detach(), sums, counts, batch)
                if not self.accelerator.sync_gradients:
                    continue
                state.step += 1
                if self._after_step(state, window, lr, has_valid):
                    break
                if self._save_pending or self._requeue_pending:
                    self._checkpoint_on_signal(state)
            else:
                if not trained_this_epoch and started_at == 0:  # a whole epoch of skips: it would never end
                    raise RuntimeError(f"every micro-batch of epoch {state.epoch} had a non-finite loss "
                                       f"({state.skipped_nonfinite} skipped so far): nothing left to train on")
                state.epoch, state.batches_in_epoch = state.epoch + 1, 0
                continue
            break
        saved = self.checkpoints.completed()
        if not saved or saved[-1][0] != state.step:
            self._save(state, "final")
        self.metrics.close()
        return state

    def _agree(self, loss: torch.Tensor) -> bool:
        """One all-reduce per micro-batch, on every rank: is the loss finite everywhere, and did a
        signal reach any rank (then all ranks save after the same optimizer step)."""
        term, requeue = self.preemption.poll()
        flags = torch.tensor([float(not torch.isfinite(loss)), float(term), float(requeue)], device=self.device)
        nonfinite, term, requeue = (value > 0 for value in _all_reduce(flags, "max").tolist())
        self._save_pending |= term or requeue
        self._requeue_pending |= requeue
        return not nonfinite

    def _save(self, state: TrainerState, reason: str) -> None:
        self.checkpoints.save(self.accelerator, self.model, state, self.train.keep_last, reason=reason)
        self._saved_step = state.step

    def _checkpoint_on_signal(self, state: TrainerState) -> None:
        if self._saved_step != state.step:
            self._save(state, "requeue-signal" if self._requeue_pending else "term-signal")
        self._save_pending = False
        if self._requeue_pending:
            self.metrics.close()
            self.preemption.hand_over()  # submitit requeues from global rank 0; every rank exits

    def _after_step(self, state: TrainerState, window: "_Window", lr: float, has_valid: bool) -> bool:
        """Log / evaluate / checkpoint after optimizer step ``state.step``; True to leave the epoch."""
        if state.step % self.train.log_steps == 0:
            row = window.row(state, lr, self.task_names, self.flops, self.peak_flops, self.world)
            state.tokens_seen += row["tokens"]
            row["tokens_seen"] = state.tokens_seen
            row["total_steps"] = self.total_steps  # max_steps, else epochs x steps per epoch: the ETA's total
            self.metrics.log(row)
            window.reset()
        last = state.step >= self.total_steps
        improved = False
        if has_valid and (state.step % self.train.eval_steps == 0 or last):
            improved = self._eval_and_track(state)
        done = last or state.stopped_early
        if state.step % self.train.save_steps == 0 or improved or done:
            self._save(state, "final" if done else "best" if improved else "periodic")
        self.on_step(state)  # tests use it to kill a run mid-way
        return done


class _Window:
    """Sums over the micro-batches since the last train log row."""

    def __init__(self, num_tasks: int, device):
        self.num_tasks, self.device = num_tasks, device
        self.reset()

    def reset(self) -> None:
        self.loss_sum = torch.zeros(2, device=self.device)  # [sum of micro-batch losses, micro-batches]
        self.task_sums = torch.zeros(self.num_tasks, device=self.device)
        self.task_counts = torch.zeros(self.num_tasks, device=self.device)
        self.tokens = self.attention_pairs = 0
        self.started = time.perf_counter()

    def add(self, loss, sums, counts, batch) -> None:
        self.loss_sum += torch.stack([loss.float(), torch.ones((), device=self.device)])
        self.task_sums += sums
        self.task_counts += counts
        self.tokens += int(batch["attention_mask"].sum())
        self.attention_pairs += causal_pairs(batch_sample_lengths(batch))

    def row(self, state: TrainerState, lr: float, task_names: list[str], flops: ModelFlops, peak: float | None,
            world: int) -> dict:
        loss_sum = _all_reduce(self.loss_sum.clone())
        sums, counts = _all_reduce(self.task_sums.clone()), _all_reduce(self.task_counts.clone())
        seconds = max(time.perf_counter() - self.started, 1e-9)
        totals = _all_reduce(torch.tensor([float(self.tokens), float(self.attention_pairs)], device=self.device,
                                          dtype=torch.float64))
        tokens, pairs = int(totals[0].item()), int(totals[1].item())
        tokens_per_s = tokens / seconds
        step_flops = flops.step_flops(tokens, int(counts.sum().item()), pairs)
        return {
            "kind": "train", "step": state.step, "epoch": state.epoch,
            "loss": (loss_sum[0] / loss_sum[1]).item() if loss_sum[1] > 0 else float("nan"),
            "loss_per_task": {name: (s / c if c > 0 else float("nan"))
                              for name, s, c in zip(task_names, sums.tolist(), counts.tolist())},
            "lr": lr, "tokens": tokens, "tokens_per_s": tokens_per_s, "supervised_tokens_per_s": counts.sum().item() / seconds,
            "mfu": mfu(step_flops, seconds, peak, world), "memory_gib": memory_gib(),
            "skipped_nonfinite": state.skipped_nonfinite, "time": time.time(),
        }
