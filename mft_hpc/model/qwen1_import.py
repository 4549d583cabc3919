"""`mft-hpc model import`: a Qwen-1 checkpoint -> a native ``Qwen2ForCausalLM`` directory.

Everything is checked before a byte is written (config, tokenizer file, every tensor's name, shape,
dtype and presence in its file); then the weights are streamed tensor by tensor into sharded
safetensors in the source dtype, with the fast tokenizer and a greedy-neutral generation config
beside them. The directory is built under a temporary name and renamed into place, then marked
``.done``: a destination without its marker is never a finished import.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mft_hpc.errors import UserError
from mft_hpc.model.qwen1 import IGNORED_SUFFIXES, SAFETENSORS_DTYPES, TIKTOKEN_FILE, Qwen1Shape, qwen2_tensors, read_qwen1_config
from mft_hpc.model.safetensors_stream import ShardWriter, TensorSpan, read_header
from mft_hpc.rundir import atomic_write_json, clear_done, is_done, mark_done

CONVERTER_VERSION = 1  # bump when the output changes: the import cache is keyed by it
MAX_SHARD_BYTES = 2 << 30
PROVENANCE = "mft-hpc-import.json"  # inside the destination: says the directory is ours


@dataclass(frozen=True)
class Qwen1Source:
    """A validated Qwen-1 checkpoint: its shape and where each of its tensors is."""

    path: Path
    shape: Qwen1Shape
    tensors: dict[str, TensorSpan]
    dtype: str  # safetensors dtype of every tensor, e.g. BF16

    @property
    def files(self) -> list[Path]:
        """Every file the conversion reads (what the cache's content hash covers)."""
        names = {span.file for span in self.tensors.values()}
        names |= {self.path / "config.json", self.path / TIKTOKEN_FILE}
        if (self.path / "model.safetensors.index.json").is_file():
            names.add(self.path / "model.safetensors.index.json")
        return sorted(names)


def _weight_files(src: Path) -> list[Path]:
    index = src / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
            files = sorted(set(weight_map.values()))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise UserError(f"{index}: weight_map: not a safetensors index ({err})") from None
        missing = [name for name in files if not (src / name).is_file()]
        if missing:
            raise UserError(f"{index}: weight_map: names missing file(s) {', '.join(missing)}")
        return [src / name for name in files]
    if (src / "model.safetensors").is_file():
        return [src / "model.safetensors"]
    if any(src.glob("*.bin")):
        raise UserError(f"{src}: only safetensors checkpoints are imported (found .bin weights); "
                        "the published Qwen-1 checkpoints ship model*.safetensors")
    raise UserError(f"{src}: no weights (neither model.safetensors nor model.safetensors.index.json)")


def inspect_qwen1(src: str | os.PathLike) -> Qwen1Source:
    """Validate a Qwen-1 checkpoint without converting it; every refusal is a UserError (exit 2)."""
    src = Path(src)
    _, shape = read_qwen1_config(src)
    if not (src / TIKTOKEN_FILE).is_file():
        raise UserError(f"{src}: no {TIKTOKEN_FILE} (Qwen-1's tokenizer file)")
    tensors: dict[str, TensorSpan] = {}
    for path in _weight_files(src):
        for name, span in read_header(path).items():
            if name.endswith(IGNORED_SUFFIXES):
                continue
            if name in tensors:
                raise UserError(f"{path}: tensor {name}: also in {tensors[name].file}")
            tensors[name] = span
    expected = shape.expected_tensors()
    missing = [name for name in expected if name not in tensors]
    unexpected = sorted(set(tensors) - set(expected))
    if missing:
        raise UserError(f"{src}: missing tensor(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} "
                        "for the shape config.json declares")
    if unexpected:
        raise UserError(f"{src}: tensor(s) {', '.join(unexpected[:5])} have no Qwen2 counterpart")
    for name, want in expected.items():
        span = tensors[name]
        if span.shape != want:
            raise UserError(f"{span.file}: tensor {name}: shape {list(span.shape)}, config.json implies {list(want)}")
    dtypes = {span.dtype for span in tensors.values()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in SAFETENSORS_DTYPES:
        raise UserError(f"{src}: tensors must all be one of {', '.join(SAFETENSORS_DTYPES)} (found {', '.join(sorted(dtypes))})")
    return Qwen1Source(src, shape, tensors, dtypes.pop())


def _native_plan(source: Qwen1Source) -> list[tuple[str, TensorSpan]]:
    """(native name, source byte span) for every native tensor, in the source's layer order."""
    plan = []
    for name in source.shape.expected_tensors():
        for native, start, stop in qwen2_tensors(source.shape, name):
            plan.append((native, source.tensors[name].rows(start, stop)))
    return plan


def _write_weights(plan: list[tuple[str, TensorSpan]], out: Path, max_shard_bytes: int) -> None:
    shards: list[list[tuple[str, TensorSpan]]] = [[]]
    size = 0
    for item in plan:
        if shards[-1] and size + item[1].nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(item)
        size += item[1].nbytes
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    weight_map = {}
    for file_name, shard in zip(names, shards):
        writer = ShardWriter(out / file_name, [(name, span.dtype, span.shape) for name, span in shard])
        for name, span in shard:
            writer.write(name, span)
            weight_map[name] = file_name
        writer.close()
    if len(shards) > 1:
        total = sum(span.nbytes for _, span in plan)
        atomic_write_json(out / "model.safetensors.index.json",
                          {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)


def _write_tokenizer_and_configs(source: Qwen1Source, out: Path) -> None:
    from transformers import GenerationConfig

    from mft_hpc.model.qwen1_tokenizer import build_qwen1_fast_tokenizer

    tokenizer = build_qwen1_fast_tokenizer(source.path / TIKTOKEN_FILE, model_max_length=source.shape.max_positions)
    # a model narrower than the tokenizer (test fixtures) cannot emit the tokenizer's eos
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id < source.shape.vocab_size else None
    dtype = SAFETENSORS_DTYPES[source.dtype]
    atomic_write_json(out / "config.json", source.shape.qwen2_config(dtype, eos), indent=2, sort_keys=True)
    # greedy-neutral: Qwen-1's sampling defaults (top_p 0.8, repetition_penalty 1.1, ...) are not carried
    generation = GenerationConfig(eos_token_id=eos, pad_token_id=eos, do_sample=False, num_beams=1)
    generation.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _provenance(dst: Path) -> dict:
    try:
        return json.loads((dst / PROVENANCE).read_text())
    except (OSError, ValueError):
        return {}


def import_qwen1(src: str | os.PathLike, dst: str | os.PathLike, *, info: dict | None = None,
                 max_shard_bytes: int = MAX_SHARD_BYTES, source: Qwen1Source | None = None) -> Path:
    """Convert ``src`` into ``dst`` (skipped when ``dst`` is already a finished import)."""
    dst = Path(dst).absolute()
    source = source or inspect_qwen1(src)
    if is_done(dst):
        made_from = _provenance(dst).get("source")
        if made_from != str(source.path.absolute()):
            raise UserError(f"{dst}: already an import of {made_from}, not of {source.path}")
        return dst
    if dst.exists():
        if not (dst / PROVENANCE).is_file() and (not dst.is_dir() or any(dst.iterdir())):
            raise UserError(f"{dst}: exists and is not an mft-hpc import: choose an empty or new destination")
        shutil.rmtree(dst)  # an unfinished import of ours (stopped before its .done): redo it
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    provenance = {"source": str(source.path.absolute()), "converter_version": CONVERTER_VERSION,
                  "architecture": "Qwen2ForCausalLM", "dtype": SAFETENSORS_DTYPES[source.dtype], **(info or {})}
    try:
        _write_weights(_native_plan(source), tmp, max_shard_bytes)
        _write_tokenizer_and_configs(source, tmp)
        atomic_write_json(tmp / PROVENANCE, provenance, indent=2)
        clear_done(dst)
        try:
            os.replace(tmp, dst)
        except OSError:
            if not (dst / PROVENANCE).is_file():
                raise
            shutil.rmtree(tmp)  # another process finished the same import first: keep its copy
            return dst
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    mark_done(dst, provenance)
    return dst
