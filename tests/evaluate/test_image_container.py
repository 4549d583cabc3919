"""The evaluation worker lives in the image (layer 2): the package's exact files, root-owned and
read-only, and an image without it is refused by name (real apptainer / bwrap)."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from mft_hpc.errors import UserError
from mft_hpc.evaluate.batch import run_jobs
from mft_hpc.evaluate.image import toolchain_image
from mft_hpc.evaluate.runtime import IMAGE_WORKER_DIR, WORKER_DIR, find_apptainer, make_runtime
from mft_hpc.evaluate.worker.sources import source_files

pytestmark = pytest.mark.container


def test_image_worker_is_the_package_worker(evaluation_image):
    names = source_files(str(WORKER_DIR))
    paths = [f"{IMAGE_WORKER_DIR}/{name}" for name in names]
    out = subprocess.run([find_apptainer("apptainer"), "-q", "exec", "--containall", str(evaluation_image),
                          "sh", "-c", 'sha256sum "$@" && stat -c "%u:%g %a %n" "$0" "$@"', IMAGE_WORKER_DIR,
                          *paths], capture_output=True, text=True, check=True).stdout.splitlines()
    sums = dict(reversed(line.split()) for line in out[:len(paths)])
    assert sums == {f"{IMAGE_WORKER_DIR}/{n}": hashlib.sha256((WORKER_DIR / n).read_bytes()).hexdigest()
                    for n in names}
    modes = [line.split() for line in out[len(paths):]]
    assert modes == [["0:0", "755", IMAGE_WORKER_DIR]] + [["0:0", "644", p] for p in paths]


CPP_APPEND = '#include <cstdio>\nint main() {{ return fopen("{path}", "a") ? 0 : 1; }}\n'


def test_programs_cannot_modify_the_worker(sandbox_runtime):
    """Each attack passes only if the write succeeded; the same writes into the scratch dir pass."""
    worker, new_file = f"{IMAGE_WORKER_DIR}/__main__.py", f"{IMAGE_WORKER_DIR}/planted.py"
    cases = [("python", f"open({worker!r}, 'a').write('# pwned')\n", "fail"),
             ("python", f"open({new_file!r}, 'w').write('pwned')\n", "fail"),
             ("cpp", CPP_APPEND.format(path=worker), "fail"),
             ("python", "open('own.txt', 'w').write('ok')\n", "pass"),
             ("cpp", CPP_APPEND.format(path="own.txt"), "pass")]
    jobs = [{"id": i, "lang": lang, "source": source, "timeout": 20.0, "compile_timeout": 120.0}
            for i, (lang, source, _) in enumerate(cases)]
    results = {}
    run_jobs(sandbox_runtime, jobs, 2, lambda r: results.__setitem__(r["id"], r))
    assert [results[i]["verdict"] for i in range(len(cases))] == [want for *_, want in cases], results
    for i in (0, 1):   # refused by the file system, not failing for some other reason
        assert "Read-only file system" in results[i]["reason"] or "Permission denied" in results[i]["reason"]


def test_image_without_worker_is_refused_by_name(evaluation_image):
    base = toolchain_image()      # layer 1: the toolchains only
    if not base.exists():         # evaluation_image was cached without it
        pytest.skip(f"no toolchain image {base}")
    runtime = make_runtime("apptainer", str(base))
    with pytest.raises(UserError, match="mft-hpc container build") as error:
        runtime.probe()
    assert str(base) in str(error.value) and IMAGE_WORKER_DIR in str(error.value)


def test_javac_server_starts_from_its_class_archive(apptainer_runtime, tmp_path):
    """The archive dumped at image build is the one the JVM maps (a jar changed after the dump, or
    other flags, would make it fall back silently to a cold start), and the server still answers
    its protocol, and only it, on stdout."""
    from mft_hpc.evaluate.worker.java import ARCHIVE_SAMPLE, SERVER_ARCHIVE, SERVER_JAR, server_command

    scratch = tmp_path / "scratch"
    apptainer_runtime.prepare_scratch(scratch)
    (scratch / "p").mkdir()
    (scratch / "p" / "Main.java").write_text(ARCHIVE_SAMPLE)
    (scratch / "p").chmod(0o777)
    prebuilt = f"{IMAGE_WORKER_DIR}/prebuilt"
    cmd = apptainer_runtime.argv(scratch, 1, [])
    image_at = cmd.index(str(apptainer_runtime.image))
    server = server_command(f"{prebuilt}/{SERVER_JAR}", 1, f"{prebuilt}/{SERVER_ARCHIVE}")
    server.insert(server.index("-cp"), "-Xlog:class+load=info:stderr")   # after the server's own log flags
    proc = subprocess.run(cmd[:image_at + 1] + server, input="7\t/scratch/p\n", capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout == "7\t0\t\n"
    assert "JavacServer source: shared objects file (top)" in proc.stderr
    assert "com.sun.tools.javac.main.JavaCompiler source: shared objects file (top)" in proc.stderr
