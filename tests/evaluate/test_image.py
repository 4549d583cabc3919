"""The image is built in two layers (toolchains, then the worker), each cached by the hash of its inputs."""

import shutil
import sys

from mft_hpc.evaluate.image import CONTAINERS_DIR, definition_hash, worker_hash
from mft_hpc.evaluate.runtime import IMAGE_WORKER_DIR, WORKER_DIR, ApptainerRuntime, BwrapRuntime, HostRuntime


def test_hash_follows_definition_and_copied_files(tmp_path):
    copy = tmp_path / "containers"
    shutil.copytree(CONTAINERS_DIR, copy)
    base = definition_hash(copy)
    assert definition_hash(copy) == base
    (copy / "install_apptainer.sh").write_text("# not an input of the image\n")
    (copy / "worker.def").write_text((copy / "worker.def").read_text() + "\n%labels\n    x y\n")
    assert definition_hash(copy) == base
    (copy / "rand_compat" / "src" / "lib.rs").write_text("// changed\n")
    changed = definition_hash(copy)
    assert changed != base
    # the header comment documents, it builds nothing: editing it must not cost an 11-minute rebuild
    definition = copy / "evaluation.def"
    body = definition.read_text().split("\nBootstrap:", 1)[1]
    definition.write_text("# a reworded header\n#\nBootstrap:" + body)
    assert definition_hash(copy) == changed
    definition.write_text(definition.read_text() + "\n# comment\n")
    assert definition_hash(copy) not in (base, changed)


def test_worker_hash_follows_worker_definition_and_files(tmp_path):
    containers, worker = tmp_path / "containers", tmp_path / "worker"
    shutil.copytree(CONTAINERS_DIR, containers)
    shutil.copytree(WORKER_DIR, worker, ignore=shutil.ignore_patterns("__pycache__"))
    base = worker_hash(containers, worker)
    assert base == worker_hash()
    (tmp_path / "batch.py").write_text("# next to the worker, not in it\n")
    (worker / "__pycache__").mkdir(exist_ok=True)
    (worker / "__pycache__" / "batch.cpython-311.pyc").write_bytes(b"bytecode of this checkout")
    (containers / "evaluation.def").write_text("# other toolchains\n")    # layer 1 has its own hash
    assert worker_hash(containers, worker) == base
    hashes = {base}
    names = sorted(p.name for p in worker.iterdir() if p.is_file())
    assert {"__main__.py", "batch.py", "runner.py", "python.py", "JavacServer.java"} <= set(names)
    for name in names:   # every file of the folder is part of the layer
        (worker / name).write_text((worker / name).read_text() + "\n// changed\n")
        hashes.add(worker_hash(containers, worker))
    (worker / "new_language.py").write_text("# a new module\n")
    hashes.add(worker_hash(containers, worker))
    (containers / "worker.def").write_text((containers / "worker.def").read_text() + "\n%labels\n    x y\n")
    hashes.add(worker_hash(containers, worker))
    assert len(hashes) == 3 + len(names)


def test_sandboxes_run_the_image_worker_and_bind_no_package_code(tmp_path):
    sif, rootfs = tmp_path / "eval.sif", tmp_path / "eval.rootfs"
    sif.write_bytes(b"")
    rootfs.mkdir()
    apptainer = ApptainerRuntime(name="apptainer", image=str(sif), binary="/bin/true")
    bwrap = BwrapRuntime(name="bwrap", image=str(rootfs), binary="/bin/true")
    worker = ["python3", "-I", IMAGE_WORKER_DIR, "--scratch", "/scratch", "--probe"]
    for runtime in (apptainer, bwrap):
        argv = runtime.argv(tmp_path / "scratch", 2, ["--probe"])
        assert argv[-len(worker):] == worker
        assert not any(str(WORKER_DIR) in arg or "/worker:" in arg for arg in argv), argv
    # an explicit worker directory (bench/eval_throughput.py's baseline) is bound read-only and run
    apptainer.worker_dir, apptainer.worker_script = tmp_path, "other.py"
    argv = apptainer.argv(tmp_path / "scratch", 2, [])
    assert f"{tmp_path}:/worker:ro" in argv and argv[-4:] == ["-I", "/worker/other.py", "--scratch", "/scratch"]
    host = HostRuntime(name="host").argv(tmp_path, 1, [])
    assert host[:3] == [sys.executable, "-I", str(WORKER_DIR)]
