#!/usr/bin/env bash
# Everything evaluation needs on this machine, idempotent (for `make test`'s system-deps step):
# Apptainer 1.4 in /opt/apptainer (root only) and the evaluation image in the cache, in two layers:
# the toolchains (/var/cache/mft-hpc/images/<definition hash>.sif, containers/evaluation.def) and,
# over them, the worker (<definition hash>-<worker hash>.sif, containers/worker.def), plus the
# worker layer's unpacked copy for --runtime bwrap.
#   cold: ~15 s install + ~11 min toolchains + ~20 s worker layer and its unpacked copy;
#   after a worker change: only the last two (~20 s); warm: ~3 s.
# usage: containers/setup.sh [PYTHON]      (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
if [ "$(id -u)" != 0 ]; then
    echo "containers/setup.sh: not root: skipping Apptainer install and image build (container tests will skip)"
    exit 0
fi
bash containers/install_apptainer.sh /opt/apptainer
"$PY" -m mft_hpc container build --sandbox
