"""The evaluation image, built in two layers and cached by the hash of each layer's inputs.

Layer 1 (containers/evaluation.def): the six toolchains, ``<definition hash>.sif`` (~11 min cold).
Layer 2 (containers/worker.def): layer 1 plus the evaluation worker folder at /opt/mft-hpc/worker,
``<definition hash>-<worker hash>.sif`` (~20 s; the hash covers every file of the folder), so a worker
change never rebuilds
the toolchains. The cache lives outside the repository (default /var/cache/mft-hpc/images as root,
else ~/.cache/mft-hpc/images; override with $MFT_HPC_IMAGE_CACHE), so every checkout on a machine
reuses one build. A build goes to a temporary name and is renamed into place only when complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from mft_hpc.errors import UserError
from mft_hpc.evaluate.runtime import WORKER_DIR, find_apptainer
from mft_hpc.evaluate.worker.sources import source_files

CONTAINERS_DIR = Path(__file__).resolve().parents[2] / "containers"
DEFINITION = CONTAINERS_DIR / "evaluation.def"
# files the definition copies in (%files); they are part of the hash
DEFINITION_INPUTS = ("evaluation.def", "rand_compat")
WORKER_DEFINITION = CONTAINERS_DIR / "worker.def"


def cache_dir() -> Path:
    if os.environ.get("MFT_HPC_IMAGE_CACHE"):
        return Path(os.environ["MFT_HPC_IMAGE_CACHE"])
    if os.geteuid() == 0:
        return Path("/var/cache/mft-hpc/images")
    return Path.home() / ".cache" / "mft-hpc" / "images"


def _content(path: Path) -> bytes:
    """A file's bytes; for a definition without its leading comment, which documents and builds nothing."""
    data = path.read_bytes()
    if path.suffix != ".def":
        return data
    lines = data.splitlines(keepends=True)
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith(b"#")):
        lines.pop(0)
    return b"".join(lines)


def _digest(files: list[tuple[str, Path | bytes]]) -> str:
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode() + b"\0")
        digest.update((path if isinstance(path, bytes) else _content(path)) + b"\0")
    return digest.hexdigest()[:16]


def cpp_prelude() -> bytes:
    """The grader's fixed C++ prelude, precompiled in layer 2 (the worker uses it when it matches)."""
    from mft_hpc.evaluate.assemble import CPP_IMPORTS

    return ("\n".join(CPP_IMPORTS) + "\n").encode()


def definition_hash(containers_dir: Path = CONTAINERS_DIR) -> str:
    """Layer 1: the toolchain definition and the files it copies in."""
    files = []
    for name in DEFINITION_INPUTS:
        root = containers_dir / name
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        files += [(str(p.relative_to(containers_dir)), p) for p in paths]
    return _digest(files)


def worker_hash(containers_dir: Path = CONTAINERS_DIR, worker_dir: Path = WORKER_DIR) -> str:
    """Layer 2: worker.def and every file of the worker folder (by name, so every checkout shares the build)."""
    return _digest([("worker.def", containers_dir / "worker.def"),
                    *((f"worker/{name}", worker_dir / name) for name in source_files(str(worker_dir))),
                    ("cpp_prelude.h", cpp_prelude())])


def toolchain_image() -> Path:
    return cache_dir() / f"{definition_hash()}.sif"


def default_image(sandbox: bool = False) -> Path:
    """The final (layer 2) image for this checkout's definitions and worker."""
    name = f"{definition_hash()}-{worker_hash()}"
    return cache_dir() / (f"{name}.rootfs" if sandbox else f"{name}.sif")


def build_definition(definition: Path, out: Path, force: bool = False, build_args: dict[str, str] | None = None,
                     log=print) -> Path:
    """Build one definition into ``out`` (``apptainer build --fakeroot``) unless it exists; returns ``out``."""
    if out.exists() and not force:
        log(f"image up to date: {out}")
        return out
    apptainer = find_apptainer("apptainer")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.building")
    cmd = [apptainer, "-q", "build", "-F", "--mksquashfs-args", "-comp lz4"]
    if os.geteuid() == 0:
        cmd.append("--fakeroot")   # %post as root without CAP_SYS_RESOURCE fails otherwise
    for key, value in (build_args or {}).items():
        cmd += ["--build-arg", f"{key}={value}"]
    cmd += [str(tmp), str(definition)]
    log(f"building {out} from {definition.name} ...")
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=definition.parent, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise UserError(f"{definition}: apptainer build failed:\n{tail}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    log(f"built {out} in {time.monotonic() - start:.0f} s")
    return out


def build_worker_layer(base: Path, out: Path | None = None, force: bool = False, log=print) -> Path:
    """Layer 2 over an existing toolchain image ``base``: quick, never builds the toolchains."""
    with tempfile.TemporaryDirectory(prefix="mft-hpc-worker-layer.") as tmp:
        prelude = Path(tmp) / "prelude.h"
        prelude.write_bytes(cpp_prelude())
        worker = Path(tmp) / "worker"   # exactly the hashed files: no bytecode of this checkout
        worker.mkdir()
        for name in source_files(str(WORKER_DIR)):
            shutil.copy2(WORKER_DIR / name, worker / name)
        return build_definition(WORKER_DEFINITION, Path(out) if out else default_image(), force=force,
                                build_args={"base": str(base), "worker_dir": str(worker),
                                            "cpp_prelude": str(prelude)}, log=log)


def build_image(out: Path | None = None, force: bool = False, force_toolchains: bool = False, log=print) -> Path:
    """Both layers, each only when not cached (``force``: layer 2 again; ``force_toolchains``: both)."""
    base = build_definition(DEFINITION, toolchain_image(), force=force_toolchains, log=log)
    return build_worker_layer(base, out, force=force or force_toolchains, log=log)


def build_sandbox(sif: Path, out: Path | None = None, log=print) -> Path:
    """Unpack the SIF into a directory for the bwrap runtime (cached next to it)."""
    out = Path(out) if out else sif.with_suffix(".rootfs")
    if out.is_dir():
        return out
    tmp = out.with_name(f".{out.name}.{os.getpid()}.building")
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.run([find_apptainer("apptainer"), "-q", "build", "--sandbox", "-F", str(tmp), str(sif)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"{sif}: unpacking for bwrap failed: {proc.stderr.strip()[-500:]}")
    for mount_point in ("scratch", "tmp", "proc", "dev"):
        (tmp / mount_point).mkdir(exist_ok=True)
    os.chmod(tmp, 0o755)
    try:
        os.replace(tmp, out)
    except OSError:
        if not out.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)   # another process unpacked the same image first
    log(f"unpacked {out}")
    return out
