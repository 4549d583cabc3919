"""The image is cached by the hash of its definition and of the files it copies in."""

import shutil

from mft_hpc.evaluate.image import CONTAINERS_DIR, definition_hash


def test_hash_follows_definition_and_copied_files(tmp_path):
    copy = tmp_path / "containers"
    shutil.copytree(CONTAINERS_DIR, copy)
    base = definition_hash(copy)
    assert definition_hash(copy) == base
    (copy / "install_apptainer.sh").write_text("# not an input of the image\n")
    assert definition_hash(copy) == base
    (copy / "rand_compat" / "src" / "lib.rs").write_text("// changed\n")
    changed = definition_hash(copy)
    assert changed != base
    (copy / "evaluation.def").write_text((copy / "evaluation.def").read_text() + "\n# comment\n")
    assert definition_hash(copy) not in (base, changed)
