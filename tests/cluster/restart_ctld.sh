#!/usr/bin/env bash
# Restart only slurmctld of the test cluster (tests/cluster/up.sh), keeping its state: slurmctld
# saves it on SIGTERM and, started without -c, recovers it from StateSaveLocation, so job ids, the
# queue (dependencies included) and running jobs (slurmd keeps them) survive. Root only.
#   restart_ctld.sh [SECONDS_DOWN]   stay stopped that long before starting again (default 0)
# Prints "slurmctld stopped" once the daemon is gone and "slurmctld up" once `scontrol ping` answers.
# Other users of the cluster see clients block (then fail after MessageTimeout): keep SECONDS_DOWN short.
set -euo pipefail
DOWN=${1:-0}
CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
t0=$(date +%s%N)
say() { local ms=$(( ($(date +%s%N) - t0) / 1000000 )); printf '[restart ctld %d.%03ds] %s\n' $((ms/1000)) $((ms%1000)) "$*"; }

[ "$(id -u)" = 0 ] || { echo "restart_ctld.sh must run as root" >&2; exit 1; }
PIDFILE=$(sed -n 's/^SlurmctldPidFile=//p' "$CONF")
LOGFILE=$(sed -n 's/^SlurmctldLogFile=//p' "$CONF")
[ -n "$PIDFILE" ] && [ -s "$PIDFILE" ] || { echo "no slurmctld pid file in $CONF (is the cluster up?)" >&2; exit 1; }
pid=$(cat "$PIDFILE")
[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = slurmctld ] || { echo "pid $pid in $PIDFILE is not slurmctld" >&2; exit 1; }

# SIGTERM: slurmctld writes its state before exiting. Never SIGKILL: that could lose queued jobs.
kill -TERM "$pid"
for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then echo "slurmctld ($pid) did not stop within 60 s" >&2; exit 1; fi
say "slurmctld stopped"
sleep "$DOWN"
# no -c: the saved state (jobs, ids, dependencies) is recovered. Its stdio goes nowhere, so that the
# daemon does not hold our caller's pipes open; it logs to SlurmctldLogFile.
slurmctld </dev/null >/dev/null 2>&1
for _ in $(seq 600); do timeout 5 scontrol ping >/dev/null 2>&1 && { say "slurmctld up"; exit 0; }; sleep 0.1; done
echo "slurmctld did not answer scontrol ping within 60 s after restart; its log ($LOGFILE):" >&2
tail -n 20 "$LOGFILE" >&2
exit 1
