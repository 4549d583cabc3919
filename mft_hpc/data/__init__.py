"""The training data path: jsonl tasks -> validated records -> ChatML tokens -> rows -> batches.

Contract with the trainer (mft_hpc.train):

- ``build_datasets(data_cfg, tokenizer, cache_dir) -> DataBundle``: reads every task of
  ``data_cfg.paths`` (one task per path), validates each line (UserError listing
  ``file:line: reason`` unless ``data_cfg.skip_invalid``), tokenizes once into ``cache_dir``
  (memory-mapped; keyed by tokenizer + data hash; build it on one rank, then the others read it),
  splits each task (seeded, stable) and rows samples up (pack: best-fit-decreasing per task;
  padding: one sample per row). ``bundle.train`` / ``bundle.valid`` are ``DatasetSplit`` objects
  (every row carries one task id: per-task losses come from ``task_ids``);
  ``bundle.task_names``; ``bundle.stats`` (records, invalid, skipped, truncated, dropped,
  train/valid packing efficiency, per-task counts).
- ``make_loader(split, data_cfg, micro_batch_size, rank, world_size, epoch, seed,
  task_weights=None, start_step=0, shuffle=True)`` -> iterable of batches (``len()`` = batches
  left), each a dict of torch tensors: ``input_ids`` Long[B,T], ``loss_mask`` Long[B,T]
  (token-level, unshifted: 1 where the token is a supervised target), ``position_ids``
  Long[B,T] (restart at 0 per packed sample), ``task_ids`` Long[B], ``attention_mask`` Long[B,T]
  (1 real, 0 pad), and in pack mode ``segment_ids`` Long[B,T]. ``start_step`` skips batches of
  the epoch for exact resume. Use ``shuffle=False`` for validation.
- ``model_inputs(batch, model) -> dict``: kwargs for ``model(**kwargs)`` (input_ids,
  position_ids, use_cache=False and what rules out cross-sample attention for the model's
  attn_implementation: a 4D mask, the varlen kwargs ``cu_seq_lens_q/k`` + ``max_length_q/k``, or a
  flex BlockMask). Compute the loss from logits + ``loss_mask`` (shift by one).
"""

# Imported on first use: `data check` and the config's validation read task files without the
# training extras (torch, transformers) installed.
_EXPORTS = {
    "BatchLoader": "mft_hpc.data.loader",
    "ChatMLRenderer": "mft_hpc.data.render",
    "DataBundle": "mft_hpc.data.dataset",
    "DataStats": "mft_hpc.data.dataset",
    "DatasetSplit": "mft_hpc.data.dataset",
    "Rendered": "mft_hpc.data.render",
    "as_codec": "mft_hpc.data.codec",
    "block_causal_mask": "mft_hpc.data.attention",
    "build_datasets": "mft_hpc.data.dataset",
    "load_tokenizer": "mft_hpc.data.codec",
    "make_loader": "mft_hpc.data.loader",
    "model_inputs": "mft_hpc.data.attention",
    "qwen1_tiktoken": "mft_hpc.data.codec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mft_hpc.data' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
