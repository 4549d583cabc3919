#!/usr/bin/env bash
# Bring up a real Slurm 22.05 cluster on this one machine, as root, non-interactively:
# munged + private MariaDB + slurmdbd + slurmctld + three slurmd "nodes":
#   n1, n2   2 GPUs each as GRES (placeholder device files, see gres.conf below), feature gpunode;
#            partitions debug (the default, what jobs without --partition get) and gpu
#   n3       no GPUs, feature cpunode; partition cpu
# The GPUs exist only in Slurm's bookkeeping: jobs ask for and are allocated them, nothing opens them.
#   SLURM_WORKDIR     state/logs/pids (default /tmp/mft-hpc-slurm; user mysql must traverse it)
#   SLURM_MODE        netns: each slurmd in its own network+UTS namespace (10.200.0.1x, hostname n1..n3)
#                     ports: every slurmd on 127.0.0.1, ports 17001..17003
#   SLURM_NODE_CPUS   CPUs advertised per node (default 4)
#   SLURM_MAX_ARRAY   MaxArraySize (default 1001, so that tests can exercise array splitting)
#   SLURM_MAX_JOBS    MaxJobCount (default 100000: a 1,000-member sweep is 27,001 array tasks, each counted)
# Association limits are enforced (AccountingStorageEnforce=limits; root's association has none), so a
# test can set e.g. `sacctmgr modify user root set MaxSubmitJobs=N` and see submissions refused.
# Re-running it tears the previous cluster down first and wipes state + DB (fresh job ids).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WD=${SLURM_WORKDIR:-/tmp/mft-hpc-slurm}
MODE=${SLURM_MODE:-netns}
NCPU=${SLURM_NODE_CPUS:-4}
MAXARRAY=${SLURM_MAX_ARRAY:-1001}
MAXJOBS=${SLURM_MAX_JOBS:-100000}
V=$WD/var
CTL=$(hostname -s)
t0=$(date +%s%N)
say() { local ms=$(( ($(date +%s%N) - t0) / 1000000 )); printf '[cluster up %d.%03ds] %s\n' $((ms/1000)) $((ms%1000)) "$*"; }
waitfor() { # waitfor SECONDS DESCRIPTION CMD...
  local n=$(( $1 * 10 )) d=$2; shift 2
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timeout waiting for $d" >&2; return 1; }

[ "$(id -u)" = 0 ] || { echo "up.sh must run as root" >&2; exit 1; }
bash "$HERE/install_packages.sh"
say "packages ok"

# fresh state: slurmctld job ids and the accounting DB are wiped together (stale ids would mix)
[ -d "$V/run" ] && SLURM_WORKDIR=$WD bash "$HERE/down.sh" >/dev/null 2>&1 || true
mkdir -p "$WD"; chmod 755 "$WD"
rm -rf "$V"; mkdir -p "$V"/{ctld,slurmd/n1,slurmd/n2,slurmd/n3,log,run,mysql,mysqlrun,gpu}
chown mysql:mysql "$V/mysql" "$V/mysqlrun"

# munge
[ -s /etc/munge/munge.key ] || { mungekey -c -f -k /etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 600 /etc/munge/munge.key; }
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  install -d -o munge -g munge -m 755 /run/munge
  runuser -u munge -- /usr/sbin/munged
  cp /run/munge/munged.pid "$V/run/munged.pid"   # marks it as ours for down.sh
  waitfor 10 munged sh -c 'munge -n | unmunge'
fi
say "munge ok"

# private MariaDB on 127.0.0.1:3307 (accounting is what lets sacct report states)
mariadb-install-db --user=mysql --datadir="$V/mysql" --auth-root-authentication-method=socket \
  --skip-test-db > "$V/log/mysql_install.log" 2>&1
setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$V/mysql" \
  --socket="$V/mysqlrun/mysqld.sock" --pid-file="$V/mysqlrun/mysqld.pid" \
  --bind-address=127.0.0.1 --port=3307 --innodb-lock-wait-timeout=900 \
  --innodb-flush-log-at-trx-commit=0 --log-error="$V/mysqlrun/mysqld.err" </dev/null >/dev/null 2>&1 &
waitfor 30 mariadb mariadb-admin --socket="$V/mysqlrun/mysqld.sock" ping
mariadb --socket="$V/mysqlrun/mysqld.sock" -u root <<'SQL'
CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL
say "mariadb ok"

# network: hosts n1, n2, n3
NODE_GPU="Gres=gpu:2 Features=gpunode"
NODE_CPU="Features=cpunode"
if [ "$MODE" = netns ]; then
  CTL_ADDR=10.200.0.1
  for i in 1 2 3; do ip netns del slurm-n$i 2>/dev/null || true; done
  ip link del slurmbr0 2>/dev/null || true
  ip link add slurmbr0 type bridge
  ip addr add 10.200.0.1/24 dev slurmbr0
  ip link set slurmbr0 up
  for i in 1 2 3; do
    ip netns add slurm-n$i
    ip link add veth-n$i type veth peer name eth0 netns slurm-n$i
    ip link set veth-n$i master slurmbr0 up
    ip -n slurm-n$i addr add 10.200.0.1$i/24 dev eth0
    ip -n slurm-n$i link set eth0 up
    ip -n slurm-n$i link set lo up
  done
  NODES="NodeName=n1 NodeHostname=n1 NodeAddr=10.200.0.11 CPUs=$NCPU RealMemory=8000 $NODE_GPU State=UNKNOWN
NodeName=n2 NodeHostname=n2 NodeAddr=10.200.0.12 CPUs=$NCPU RealMemory=8000 $NODE_GPU State=UNKNOWN
NodeName=n3 NodeHostname=n3 NodeAddr=10.200.0.13 CPUs=$NCPU RealMemory=8000 $NODE_CPU State=UNKNOWN"
  HOSTS="10.200.0.11 n1 # mft-hpc-slurm
10.200.0.12 n2 # mft-hpc-slurm
10.200.0.13 n3 # mft-hpc-slurm"
else
  CTL_ADDR=127.0.0.1
  NODES="NodeName=n1 NodeHostname=n1 NodeAddr=127.0.0.1 Port=17001 CPUs=$NCPU RealMemory=8000 $NODE_GPU State=UNKNOWN
NodeName=n2 NodeHostname=n2 NodeAddr=127.0.0.1 Port=17002 CPUs=$NCPU RealMemory=8000 $NODE_GPU State=UNKNOWN
NodeName=n3 NodeHostname=n3 NodeAddr=127.0.0.1 Port=17003 CPUs=$NCPU RealMemory=8000 $NODE_CPU State=UNKNOWN"
  HOSTS="127.0.0.1 n1 n2 n3 # mft-hpc-slurm"
fi
# rewrite /etc/hosts in place (it may be a bind mount: no sed -i / mv)
{ grep -v '# mft-hpc-slurm$' /etc/hosts; echo "$HOSTS"; } > "$V/hosts.new"; cat "$V/hosts.new" > /etc/hosts
say "network ok ($MODE)"

mkdir -p /etc/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=lab
SlurmctldHost=$CTL($CTL_ADDR)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=10
MailProg=/bin/true
StateSaveLocation=$V/ctld
SlurmdSpoolDir=$V/slurmd/%n
SlurmctldPidFile=$V/run/slurmctld.pid
SlurmdPidFile=$V/run/slurmd-%n.pid
SlurmctldLogFile=$V/log/slurmctld.log
SlurmdLogFile=$V/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=2,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$CTL_ADDR   # reachable from the nodes' namespaces too: jobs run sacct (the run report)
AccountingStoragePort=6819
JobCompType=jobcomp/none
MinJobAge=300
KillWait=5
InactiveLimit=0
MaxArraySize=$MAXARRAY
MaxJobCount=$MAXJOBS
GresTypes=gpu
AccountingStorageTRES=gres/gpu
AccountingStorageEnforce=limits
$NODES
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=n1,n2 MaxTime=INFINITE State=UP
PartitionName=cpu Nodes=n3 MaxTime=INFINITE State=UP
CONF
# GPU GRES. A count-only gpu line (no File=) is not enough: slurmd drops file-less GPUs ("Ignoring
# file-less GPU") and registers gpu:0, and the node goes INVAL ("gres/gpu count reported lower than
# configured (0 < 2)"). So each GPU names a placeholder character device with /dev/null's numbers:
# Slurm only needs the path to exist (no cgroup device constraint here); nothing opens it.
for i in 0 1; do mknod "$V/gpu/nvidia$i" c 1 3; done
cat > /etc/slurm/gres.conf <<CONF
AutoDetect=off
NodeName=n[1-2] Name=gpu File=$V/gpu/nvidia[0-1]
CONF
cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=$CTL
DbdAddr=$CTL_ADDR
DbdPort=6819
SlurmUser=root
DebugLevel=info
LogFile=$V/log/slurmdbd.log
PidFile=$V/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3307
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
CONF
chmod 600 /etc/slurm/slurmdbd.conf   # slurmdbd refuses a world-readable file with a password

slurmdbd
waitfor 30 slurmdbd sacctmgr -n list cluster
say "slurmdbd ok"
slurmctld
waitfor 30 slurmctld scontrol ping
say "slurmctld ok"
for i in 1 2 3; do
  if [ "$MODE" = netns ]; then
    # nsenter, not 'ip netns exec' (which remounts /sys and breaks slurmd's cgroup init);
    # unshare --uts gives the node its own hostname so gloo advertises the right address.
    nsenter --net=/run/netns/slurm-n$i unshare --uts sh -c "hostname n$i && exec slurmd -N n$i"
  else
    slurmd -N n$i
  fi
done
waitfor 60 "nodes idle" sh -c '[ "$(sinfo -h -N -o %T | sort -u)" = idle ] && [ "$(sinfo -h -N -o %N | sort -u | wc -l)" = 3 ]'
waitfor 30 "cluster in accounting" sh -c 'sacctmgr -n -P list cluster format=cluster,controlport | grep -q "^lab|6817"'
say "cluster up: $(sinfo -h -N -o '%N:%P:%T:%c:%G' | tr '\n' ' ')"
# smoke test; also absorbs the ~2.5 s delay before slurmctld's first scheduling pass
timeout 60 srun -N2 --ntasks-per-node=1 -t 1 true
say "smoke srun -N2 ok"
