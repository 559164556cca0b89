#!/bin/sh
# A single-node Slurm on this machine, for trying examples/slurm/scan.sbatch: Debian's
# slurm-wlm and munge, one node that is both controller and compute node, no accounting
# database. Needs root. Works without systemd (containers): the daemons run directly.
#
#   examples/slurm/setup-single-node.sh install   # apt-get install, munge key, slurm.conf
#   examples/slurm/setup-single-node.sh start     # munged, slurmctld, slurmd
#   examples/slurm/setup-single-node.sh stop      # stops the three daemons
#
# CPUS (default: all cores) caps what Slurm may hand out, so a shared machine stays usable.
set -eu

NODE=$(hostname -s)
CPUS=${CPUS:-$(nproc)}
MEM_MB=${MEM_MB:-2048}
CONF=/etc/slurm/slurm.conf
LOG=/var/log/slurm

install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        slurm-wlm munge
    mkdir -p /etc/munge /var/spool/slurmctld /var/spool/slurmd "$LOG" /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    chmod 0700 /etc/munge
    chmod 0400 /etc/munge/munge.key
    chown slurm:slurm /var/spool/slurmctld "$LOG"
    # No cgroups, no accounting daemon: process tracking by /proc, job completions to a file.
    cat >"$CONF" <<EOF
ClusterName=mpscope
SlurmctldHost=$NODE
AuthType=auth/munge
SlurmUser=slurm
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.log
MpiDefault=none
ReturnToService=2
NodeName=$NODE CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    echo "wrote $CONF (node $NODE, $CPUS CPUs)"
}

start() {
    if ! pgrep -x munged >/dev/null; then
        runuser -u munge -- /usr/sbin/munged
    fi
    if ! pgrep -x slurmctld >/dev/null; then
        /usr/sbin/slurmctld
    fi
    if ! pgrep -x slurmd >/dev/null; then
        /usr/sbin/slurmd
    fi
    # The node comes up within a few seconds.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        if sinfo -h -N -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            sinfo
            return 0
        fi
        sleep 1
    done
    echo "the node did not come up; see $LOG/slurmd.log and $LOG/slurmctld.log" >&2
    sinfo >&2 || true
    return 1
}

# Stops each daemon by the pid it wrote (never by name, other users' processes stay alone).
stop_pid() {
    name=$1
    pidfile=$2
    if [ -s "$pidfile" ]; then
        pid=$(cat "$pidfile")
        if kill "$pid" 2>/dev/null; then
            for _ in 1 2 3 4 5 6 7 8 9 10; do
                kill -0 "$pid" 2>/dev/null || break
                sleep 1
            done
            echo "stopped $name ($pid)"
        fi
    fi
}

stop() {
    stop_pid slurmd /run/slurmd.pid
    stop_pid slurmctld /run/slurmctld.pid
    stop_pid munged /run/munge/munged.pid
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 install|start|stop" >&2
    exit 2
    ;;
esac
