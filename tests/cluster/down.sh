#!/usr/bin/env bash
# Stop what up.sh started, by PID file, and undo its network/hosts changes.
set -uo pipefail
WD=${SLURM_WORKDIR:-/tmp/mft-hpc-slurm}
V=$WD/var
t0=$(date +%s%N)
say() { local ms=$(( ($(date +%s%N) - t0) / 1000000 )); printf '[cluster down %d.%03ds] %s\n' $((ms/1000)) $((ms%1000)) "$*"; }
stop() { # stop PIDFILE NAME: SIGTERM, wait up to 20 s, then SIGKILL
  local f=$1 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
  kill -TERM "$pid"
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { echo "SIGKILL $2 ($pid)"; kill -KILL "$pid"; }
  rm -f "$f"; say "stopped $2 ($pid)"
}
# cancel jobs first so that no slurmstepd/job process outlives its slurmd
if timeout 5 scontrol ping >/dev/null 2>&1; then
  ids=$(squeue -h -o %A)
  [ -n "$ids" ] && scancel $ids
  for _ in $(seq 300); do [ -z "$(squeue -h -o %A)" ] && break; sleep 0.1; done
fi
say "jobs cleared"
for f in "$V"/run/slurmd-*.pid; do stop "$f" slurmd & done; wait
stop "$V/run/slurmctld.pid" slurmctld
stop "$V/run/slurmdbd.pid" slurmdbd
stop "$V/mysqlrun/mysqld.pid" mariadbd
if [ -s "$V/run/munged.pid" ]; then stop "$V/run/munged.pid" munged; fi   # only if we started it
for i in 1 2 3; do ip netns del slurm-n$i 2>/dev/null; done
rm -f /etc/slurm/gres.conf   # up.sh writes it each time; a stale one must not meet a slurm.conf without GresTypes
ip link del slurmbr0 2>/dev/null
if grep -q '# mft-hpc-slurm$' /etc/hosts; then
  grep -v '# mft-hpc-slurm$' /etc/hosts > "$V/hosts.new"; cat "$V/hosts.new" > /etc/hosts
fi
say "done"
