"""The evaluation image: built from containers/evaluation.def, cached by the hash of its inputs.

The cache lives outside the repository (default /var/cache/mft-hpc/images as root, else
~/.cache/mft-hpc/images; override with $MFT_HPC_IMAGE_CACHE), so every checkout on a machine
reuses one build. A build goes to a temporary name and is renamed into place only when complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from mft_hpc.errors import UserError
from mft_hpc.evaluate.runtime import find_apptainer

CONTAINERS_DIR = Path(__file__).resolve().parents[2] / "containers"
DEFINITION = CONTAINERS_DIR / "evaluation.def"
# files the definition copies in (%files); they are part of the hash
DEFINITION_INPUTS = ("evaluation.def", "rand_compat")


def cache_dir() -> Path:
    if os.environ.get("MFT_HPC_IMAGE_CACHE"):
        return Path(os.environ["MFT_HPC_IMAGE_CACHE"])
    if os.geteuid() == 0:
        return Path("/var/cache/mft-hpc/images")
    return Path.home() / ".cache" / "mft-hpc" / "images"


def definition_hash(containers_dir: Path = CONTAINERS_DIR) -> str:
    digest = hashlib.sha256()
    for name in DEFINITION_INPUTS:
        root = containers_dir / name
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            digest.update(str(path.relative_to(containers_dir)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def default_image(sandbox: bool = False) -> Path:
    name = definition_hash()
    return cache_dir() / (f"{name}.rootfs" if sandbox else f"{name}.sif")


def build_image(out: Path | None = None, force: bool = False, log=print) -> Path:
    """Build the SIF (``apptainer build --fakeroot``) unless it is cached; returns its path."""
    out = Path(out) if out else default_image()
    if out.exists() and not force:
        log(f"image up to date: {out}")
        return out
    apptainer = find_apptainer("apptainer")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.building")
    cmd = [apptainer, "-q", "build", "-F", "--mksquashfs-args", "-comp lz4"]
    if os.geteuid() == 0:
        cmd.append("--fakeroot")   # %post as root without CAP_SYS_RESOURCE fails otherwise
    cmd += [str(tmp), str(DEFINITION)]
    log(f"building {out} (several minutes) ...")
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=CONTAINERS_DIR, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise UserError(f"{DEFINITION}: apptainer build failed:\n{tail}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    log(f"built {out} in {time.monotonic() - start:.0f} s")
    return out


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
    for mount_point in ("scratch", "worker", "tmp", "proc", "dev"):
        (tmp / mount_point).mkdir(exist_ok=True)
    os.chmod(tmp, 0o755)
    os.replace(tmp, out)
    log(f"unpacked {out}")
    return out
