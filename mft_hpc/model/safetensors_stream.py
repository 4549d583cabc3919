"""Read and write safetensors files one byte range at a time, so a conversion never holds a model.

``safetensors.torch.save_file`` serialises every tensor of a file before writing it, and reading
through its memory map counts every touched page in the process's RSS. Renaming and slicing rows of
a checkpoint needs neither: the format is an 8-byte header length, a JSON header (name -> dtype,
shape, byte offsets), then the raw bytes, so a row slice of a row-major tensor is one contiguous
byte range that can be copied through a fixed-size buffer.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from mft_hpc.errors import UserError

DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
COPY_CHUNK = 16 << 20  # bytes per read/write: the conversion's memory does not grow with tensor size
MAX_HEADER = 100 << 20


@dataclass(frozen=True)
class TensorSpan:
    """Where one tensor's bytes are: ``file`` at absolute ``offset``, ``nbytes`` long."""

    file: Path
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int

    def rows(self, start: int, stop: int) -> "TensorSpan":
        """Rows ``start:stop`` of the first dimension (contiguous in a row-major tensor)."""
        row_bytes = self.nbytes // self.shape[0] if self.shape[0] else 0
        return TensorSpan(self.file, self.dtype, (stop - start,) + self.shape[1:],
                          self.offset + start * row_bytes, (stop - start) * row_bytes)


def read_header(path: str | os.PathLike) -> dict[str, TensorSpan]:
    """The tensors of one safetensors file, checked against the file's size (truncation, bad offsets)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise UserError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > MAX_HEADER or 8 + header_len > size:
                raise UserError(f"{path}: not a safetensors file or truncated (header of {header_len} bytes, "
                                f"file of {size})")
            raw = handle.read(header_len)
    except OSError as err:
        raise UserError(f"{path}: cannot read: {err.strerror}") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not a safetensors file (header is not JSON: {err})") from None
    if not isinstance(header, dict):
        raise UserError(f"{path}: not a safetensors file (header is not a JSON object)")
    data_start = 8 + header_len
    spans = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], tuple(int(d) for d in info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{path}: tensor {name}: malformed header entry {info!r}") from None
        if dtype not in DTYPE_BYTES:
            raise UserError(f"{path}: tensor {name}: unsupported dtype {dtype}")
        if end - begin != math.prod(shape) * DTYPE_BYTES[dtype] or begin < 0:
            raise UserError(f"{path}: tensor {name}: byte range {begin}..{end} does not fit shape {list(shape)} {dtype}")
        if data_start + end > size:
            raise UserError(f"{path}: truncated: tensor {name} ends at byte {data_start + end}, the file has {size}")
        spans[name] = TensorSpan(path, dtype, shape, data_start + begin, end - begin)
    return spans


class ShardWriter:
    """Write one safetensors file whose tensors (name -> dtype, shape) are known up front.

    The header goes first, then ``write`` is called once per tensor in the order given, each
    copying its bytes from a source span in chunks.
    """

    def __init__(self, path: Path, tensors: list[tuple[str, str, tuple[int, ...]]], metadata: dict | None = None):
        self.path = path
        self.order = [name for name, _, _ in tensors]
        header: dict = {"__metadata__": metadata or {"format": "pt"}}
        offset = 0
        self.nbytes = {}
        for name, dtype, shape in tensors:
            nbytes = math.prod(shape) * DTYPE_BYTES[dtype]
            header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            self.nbytes[name] = nbytes
            offset += nbytes
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)  # data starts 8-byte aligned, as safetensors writes it
        self.handle = open(path, "wb")
        self.handle.write(struct.pack("<Q", len(encoded)) + encoded)
        self.next = 0

    def write(self, name: str, source: TensorSpan) -> None:
        if self.order[self.next] != name or source.nbytes != self.nbytes[name]:
            raise ValueError(f"{self.path}: expected {self.order[self.next]} ({self.nbytes[self.order[self.next]]} "
                             f"bytes), got {name} ({source.nbytes} bytes)")
        copy_range(source, self.handle)
        self.next += 1

    def write_chunks(self, name: str, chunks) -> None:
        """Write tensor ``name`` from an iterable of buffers (e.g. rows made on the fly)."""
        if self.order[self.next] != name:
            raise ValueError(f"{self.path}: expected {self.order[self.next]}, got {name}")
        written = 0
        for chunk in chunks:
            written += self.handle.write(chunk)
        if written != self.nbytes[name]:
            raise ValueError(f"{self.path}: tensor {name}: wrote {written} bytes, expected {self.nbytes[name]}")
        self.next += 1

    def close(self) -> None:
        if self.next != len(self.order):
            raise ValueError(f"{self.path}: {len(self.order) - self.next} tensors were not written")
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()


def copy_range(source: TensorSpan, out) -> None:
    """Copy ``source``'s bytes to the open binary file ``out`` through one reusable buffer."""
    buffer = bytearray(min(COPY_CHUNK, max(source.nbytes, 1)))
    view = memoryview(buffer)
    with open(source.file, "rb", buffering=0) as handle:
        done = 0
        while done < source.nbytes:
            want = min(len(buffer), source.nbytes - done)
            got = os.preadv(handle.fileno(), [view[:want]], source.offset + done)
            if got <= 0:
                raise UserError(f"{source.file}: truncated while reading (offset {source.offset + done})")
            out.write(view[:got])
            done += got
