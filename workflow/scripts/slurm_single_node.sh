#!/usr/bin/env bash
# Usage: slurm_single_node.sh start|stop|status
#
# A one-node SLURM cluster on this machine, for trying the SLURM profile and for its end-to-end
# test (tests/test_slurm.py). Needs root and Debian 12's packages (installed by .ci/run):
#   apt-get install --no-install-recommends slurmctld slurmd slurm-client slurmdbd munge mariadb-server
# No systemd: munged, MariaDB, slurmdbd, slurmctld and slurmd are started as plain daemons.
#
# start   write the configs (cluster "heterodyne", one node "localnode" at 127.0.0.1 with the CPUs
#         and memory `slurmd -C` reports, partition "local"), start whatever is not running, and
#         wait until the node is idle. Idempotent: a second start finds everything up (~1 s).
# stop    stop the daemons this script starts (slurmd, slurmctld, slurmdbd, MariaDB, munged).
# status  exit 0 when the node answers and is idle or mixed/allocated, else 1.
#
# Why these settings (measured facts: ../shared/reference/slurm-single-node.md in the team folder):
# * accounting through slurmdbd + MariaDB: Slurm 22.05 has no file-based accounting, and the
#   executor plugin polls `sacct`, which without accounting fails and the plugin waits forever;
# * EnforcePartLimits=ALL: a job asking for more CPUs than the node has is rejected at submission
#   instead of pending forever;
# * proctrack/linuxproc and task/none: no cgroups needed.
set -euo pipefail

CONF_DIR=/etc/slurm
STATE_DIR=/var/spool/slurm-heterodyne
LOG_DIR=/var/log/slurm-heterodyne
NODE=localnode
CLUSTER=heterodyne
DB_PASS=heterodyne-slurmdbd

log() { echo "slurm_single_node: $*" >&2; }

need() {
    local missing=()
    for cmd in munged mariadbd slurmdbd slurmctld slurmd sbatch sacct sacctmgr; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    if ((${#missing[@]})); then
        log "missing ${missing[*]}: apt-get install --no-install-recommends slurmctld slurmd slurm-client slurmdbd munge mariadb-server"
        exit 2
    fi
    [[ $(id -u) == 0 ]] || { log "must run as root (it starts system daemons)"; exit 2; }
}

running() { pgrep -x "$1" >/dev/null 2>&1; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2
    shift 2
    for ((i = 0; i < limit * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    log "timed out after ${limit} s waiting for ${what}; logs in ${LOG_DIR}"
    exit 1
}

write_configs() {
    mkdir -p "$CONF_DIR" "$STATE_DIR/ctld" "$STATE_DIR/d" "$LOG_DIR"
    local hw
    hw=$(slurmd -C | head -1 | grep -o 'CPUs=.*')   # CPUs=... RealMemory=...
    cat >"$CONF_DIR/slurm.conf" <<EOF
# written by workflow/scripts/slurm_single_node.sh
ClusterName=$CLUSTER
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/d
SlurmctldPidFile=/run/slurmctld-heterodyne.pid
SlurmdPidFile=/run/slurmd-heterodyne.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
EnforcePartLimits=ALL
MinJobAge=600
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobAcctGatherType=jobacct_gather/none
AccountingStoreFlags=job_comment
NodeName=$NODE NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$CONF_DIR/slurmdbd.conf" <<EOF
# written by workflow/scripts/slurm_single_node.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=/run/slurmdbd-heterodyne.pid
LogFile=$LOG_DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$CONF_DIR/slurmdbd.conf"
}

start() {
    need
    if status >/dev/null 2>&1; then
        log "already up"
        return 0
    fi
    write_configs
    if ! running munged; then
        mkdir -p /run/munge && chown munge:munge /run/munge
        runuser -u munge -- munged
    fi
    if ! running mariadbd; then
        /etc/init.d/mariadb start >"$LOG_DIR/mariadb-start.log" 2>&1
    fi
    mysql -u root -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
    running slurmdbd || slurmdbd
    wait_for 30 "slurmdbd" sacctmgr -n list cluster
    if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    fi
    running slurmctld || slurmctld
    running slurmd || slurmd -N "$NODE"
    wait_for 60 "node $NODE to become idle" status
    log "up: partition local, node $NODE ($(sinfo -h -N -o '%c CPUs, %m MB'))"
}

status() {
    local state
    state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null) || return 1
    [[ $state == idle* || $state == mixed* || $state == allocated* ]]
}

stop() {
    for daemon in slurmd slurmctld slurmdbd; do
        pkill -x "$daemon" 2>/dev/null || true
    done
    for ((i = 0; i < 50; i++)); do
        running slurmd || running slurmctld || running slurmdbd || break
        sleep 0.2
    done
    if running mariadbd; then /etc/init.d/mariadb stop >/dev/null 2>&1 || true; fi
    pkill -x munged 2>/dev/null || true
    log "stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
