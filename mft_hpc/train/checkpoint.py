"""Atomic training checkpoints: accelerate/DeepSpeed state (optimizer, RNG, ...) + adapter + trainer state.

Every rank writes into ``.tmp-step_N``; after a barrier rank 0 renames it to ``step_N`` and writes
``step_N.done`` last, so an interrupted save never looks finished. The last ``keep_last`` and the
best checkpoint are kept; ``history.jsonl`` records each completed save and why (periodic, best,
final, requeue-signal, term-signal).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from mft_hpc.rundir import clear_done, is_done, mark_done
from mft_hpc.train.state import TrainerState

STATE_FILE = "trainer_state.json"
ADAPTER_DIR = "adapter"


class Checkpoints:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, step: int) -> Path:
        return self.root / f"step_{step:08d}"

    def completed(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.root.glob("step_*"):
            if path.is_dir() and is_done(path):
                found.append((int(path.name.split("_")[1]), path))
        return sorted(found)

    def latest(self) -> Path | None:
        done = self.completed()
        return done[-1][1] if done else None

    def remove_partial(self) -> None:
        """Drop leftovers of an interrupted save (rank 0, before training starts)."""
        for path in self.root.glob(".tmp-step_*"):
            shutil.rmtree(path, ignore_errors=True)
        for path in self.root.glob("step_*"):
            if path.is_dir() and not is_done(path):
                shutil.rmtree(path, ignore_errors=True)

    def save(self, accelerator, model, state: TrainerState, keep_last: int, reason: str = "periodic") -> Path:
        final = self.path(state.step)
        tmp = self.root / f".tmp-{final.name}"
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        # frozen base weights are not state: the checkpoint holds trainable weights + optimizer
        accelerator.save_state(str(tmp), exclude_frozen_parameters=True)
        state_dict = accelerator.get_state_dict(model)
        if accelerator.is_main_process:
            accelerator.unwrap_model(model).save_pretrained(tmp / ADAPTER_DIR, state_dict=state_dict)
            (tmp / STATE_FILE).write_text(json.dumps(state.to_dict()))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            if final.exists():
                clear_done(final)
                shutil.rmtree(final)
            os.replace(tmp, final)
            mark_done(final, {"step": state.step})
            with open(self.root / "history.jsonl", "a") as log:
                log.write(json.dumps({"step": state.step, "path": final.name, "reason": reason}) + "\n")
            self.prune(keep_last, state.best_step)
        accelerator.wait_for_everyone()
        return final

    def prune(self, keep_last: int, best_step: int | None) -> None:
        done = self.completed()
        keep = {step for step, _ in done[-keep_last:]} | ({best_step} if best_step is not None else set())
        for step, path in done:
            if step not in keep:
                clear_done(path)
                shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def load(accelerator, path: Path) -> TrainerState:
        accelerator.load_state(str(path), load_module_strict=False)
        return TrainerState.from_dict(json.loads((path / STATE_FILE).read_text()))
