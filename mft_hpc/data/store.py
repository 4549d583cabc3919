"""The tokenized corpus: flat memory-mapped arrays plus an index, cached in the run directory.

    <cache_dir>/<key>/tokens.npy   uint32  all samples' input ids, concatenated
                      mask.npy     uint8   their loss masks
                      offsets.npy  int64   [n+1] sample boundaries
                      task.npy     int32   task id per sample
                      record.npy   int64   record ordinal within its task (drives the split)
                      index.json           task names, record counts, errors, render counts
    <cache_dir>/<key>.done

``key`` hashes the tokenizer, the bytes of every data file and the rendering settings. One
process builds it (into a temporary directory renamed into place); training ranks only read it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mft_hpc.data.codec import Codec
from mft_hpc.data.records import Task, TaskRecords, read_task
from mft_hpc.data.render import DROPPED, TRUNCATED, ChatMLRenderer
from mft_hpc.rundir import is_done, mark_done

FORMAT_VERSION = 1
CHUNK = 512  # records per tokenizer call


@dataclass
class TokenStore:
    tokens: np.ndarray
    mask: np.ndarray
    offsets: np.ndarray
    task: np.ndarray
    record: np.ndarray
    index: dict

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.offsets[i], self.offsets[i + 1]
        return self.tokens[lo:hi], self.mask[lo:hi]


def cache_key(tasks: list[Task], codec: Codec, seq_length: int, overlong: str) -> str:
    digest = hashlib.sha256(f"v{FORMAT_VERSION}|{codec.fingerprint}|{seq_length}|{overlong}".encode())
    for task in tasks:
        digest.update(f"|task:{task.name}".encode())
        for file in task.files:
            digest.update(f"|file:{file.name}".encode())
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:24]


def _progress(enabled: bool):
    """A rich progress bar on stderr (a no-op context when disabled)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True, disable=not enabled)


def tokenize_tasks(task_records: list[TaskRecords], codec: Codec, seq_length: int, overlong: str,
                   show_progress: bool = True) -> TokenStore:
    renderer = ChatMLRenderer(codec, seq_length, overlong)
    tokens, masks, lengths, task_ids, record_ids = [], [], [], [], []
    per_task = []
    total = sum(len(tr.records) for tr in task_records)
    with _progress(show_progress) as progress:
        bar = progress.add_task("tokenizing", total=total)
        for task_id, tr in enumerate(task_records):
            truncated = dropped = 0
            for start in range(0, len(tr.records), CHUNK):
                chunk = tr.records[start:start + CHUNK]
                for ordinal, rendered in enumerate(renderer.render_many([r.turns for r in chunk]), start=start):
                    if rendered.status == DROPPED:
                        dropped += 1
                        continue
                    truncated += rendered.status == TRUNCATED
                    tokens.append(np.asarray(rendered.input_ids, dtype=np.uint32))
                    masks.append(np.asarray(rendered.loss_mask, dtype=np.uint8))
                    lengths.append(len(rendered.input_ids))
                    task_ids.append(task_id)
                    record_ids.append(ordinal)
                progress.advance(bar, len(chunk))
            per_task.append({"name": tr.task.name, "records": len(tr.records), "invalid": len(tr.errors),
                             "truncated": truncated, "dropped": dropped})
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    index = {"version": FORMAT_VERSION, "seq_length": seq_length, "overlong": overlong, "tasks": per_task,
             "errors": [err for tr in task_records for err in tr.errors], "pad_id": codec.pad_id,
             "im_end": codec.im_end, "tokenizer": codec.fingerprint}
    return TokenStore(
        tokens=np.concatenate(tokens) if tokens else np.zeros(0, np.uint32),
        mask=np.concatenate(masks) if masks else np.zeros(0, np.uint8),
        offsets=offsets, task=np.asarray(task_ids, dtype=np.int32), record=np.asarray(record_ids, dtype=np.int64),
        index=index,
    )


ARRAYS = ("tokens", "mask", "offsets", "task", "record")


def write_store(store: TokenStore, target: Path) -> None:
    """Write into a temporary sibling, rename into place, then mark done (a racing writer's copy is discarded)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name in ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(store, name))
        (tmp / "index.json").write_text(json.dumps(store.index, indent=1))
        for file in tmp.iterdir():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        try:
            os.rename(tmp, target)
        except OSError:  # another process renamed its copy first; theirs is identical
            shutil.rmtree(tmp, ignore_errors=True)
        if not is_done(target):
            mark_done(target, {"samples": len(store)})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_store(target: Path) -> TokenStore:
    arrays = {name: np.load(target / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    return TokenStore(index=json.loads((target / "index.json").read_text()), **arrays)


def load_or_build(tasks: list[Task], codec: Codec, seq_length: int, overlong: str,
                  cache_dir: str | os.PathLike | None, show_progress: bool = True,
                  check_errors: Callable[[list[str]], None] | None = None) -> TokenStore:
    """The cached store when ``cache_dir`` holds a finished one for this key; otherwise tokenize (and cache).

    ``check_errors`` sees the invalid lines before any tokenizing (and again for a cached store);
    it raises to refuse the data.
    """
    target = None
    if cache_dir is not None:
        target = Path(cache_dir) / cache_key(tasks, codec, seq_length, overlong)
        if is_done(target):
            store = read_store(target)
            if check_errors:
                check_errors(store.index["errors"])
            return store
    task_records = [read_task(task) for task in tasks]
    if check_errors:
        check_errors([err for tr in task_records for err in tr.errors])
    store = tokenize_tasks(task_records, codec, seq_length, overlong, show_progress)
    if target is not None:
        write_store(store, target)
        return read_store(target)
    return store
