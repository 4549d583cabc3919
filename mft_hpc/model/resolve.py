"""``model.path`` as the stages load it: a Qwen-1 checkpoint is replaced by its native import.

Run at submission, once per distinct source, so every member, stage and rerun loads the same
native copy; the resolved config keeps both paths (``model.path`` the import, ``model.imported_from``
the Qwen-1 directory), which is also how a rerun re-imports a copy that was deleted.
"""

from __future__ import annotations

from pathlib import Path

from mft_hpc.config.schema import Config
from mft_hpc.model.qwen1 import is_qwen1_dir
from mft_hpc.rundir import is_done


def import_cache_dir(config: Config) -> Path:
    return Path(config.model.import_cache or Path(config.run.root) / "model-cache")


def resolve_model(config: Config, dry_run: bool = False, imported: dict | None = None) -> Config:
    """``config`` with a Qwen-1 ``model.path`` replaced by its (cached) native import.

    ``imported`` maps (source, cache) to a path already resolved in this process; with ``dry_run``
    the destination is computed (content hash) but nothing is converted.
    """
    from mft_hpc.model.import_cache import cached_import_path, import_cached
    from mft_hpc.model.qwen1_import import inspect_qwen1

    source = config.model.path
    if not is_qwen1_dir(source):
        return config
    cache = import_cache_dir(config)
    memo = imported if imported is not None else {}
    key = (str(source), str(cache))
    if key not in memo:
        memo[key] = (cached_import_path(cache, inspect_qwen1(source))[0] if dry_run
                     else import_cached(source, cache))
    # the native copy needs no remote code (Qwen-1's cannot run on transformers 5 anyway)
    model = config.model.model_copy(update={"path": str(memo[key]), "imported_from": str(source),
                                            "trust_remote_code": False})
    return config.model_copy(update={"model": model})


def ensure_imported(config: Config) -> None:
    """Re-import a resolved config's Qwen-1 source if its native copy has gone (e.g. a cleaned cache)."""
    from mft_hpc.model.import_cache import import_cached

    if config.model.imported_from and not is_done(config.model.path):
        made = import_cached(config.model.imported_from, Path(config.model.path).parent)
        if made != Path(config.model.path):
            from mft_hpc.errors import UserError

            raise UserError(f"model.imported_from: {config.model.imported_from} changed since the run started "
                            f"(its import is now {made}, the run uses {config.model.path}); start a new run")
