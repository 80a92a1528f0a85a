#!/usr/bin/env bash
# Usage: pin_cpus.sh THREADS COMMAND [ARG...]
#
# Run COMMAND on THREADS CPUs of this process's allowed set (Linux `taskset`), so that a job
# declared with `threads: THREADS` uses that many cores and no more. XLA sizes its CPU thread
# pools from the affinity mask and ignores OMP_NUM_THREADS, so the mask is the knob that works.
#
# Concurrent jobs must get disjoint CPUs, so each CPU is claimed with an exclusive, non-blocking
# `flock` on ${HETERODYNE_CPU_LOCKS:-${TMPDIR:-/tmp}/heterodyne-cpu-locks-$UID}/cpu<N>.lock. The
# lock files stay open in COMMAND (inherited descriptors), so a claim lasts exactly as long as the
# job. If fewer than THREADS CPUs are free (more --cores than CPUs), the rest are shared ones, so
# the job still gets THREADS CPUs. Under SLURM the allowed set is the job's allocation.
# Without taskset/flock (macOS) COMMAND runs unpinned.
set -euo pipefail

threads=$1
shift
if ! command -v taskset >/dev/null || ! command -v flock >/dev/null || [[ ! -r /proc/self/status ]]; then
    exec "$@"
fi

# Allowed CPUs, e.g. "0-3,8,10-11" -> 0 1 2 3 8 10 11.
allowed=()
list=$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status)
IFS=, read -ra ranges <<<"$list"
for range in "${ranges[@]}"; do
    first=${range%-*}
    last=${range#*-}
    for ((cpu = first; cpu <= last; cpu++)); do allowed+=("$cpu"); done
done
((threads > ${#allowed[@]})) && threads=${#allowed[@]}

lockdir=${HETERODYNE_CPU_LOCKS:-${TMPDIR:-/tmp}/heterodyne-cpu-locks-$(id -u)}
mkdir -p "$lockdir"
claimed=()
for cpu in "${allowed[@]}"; do
    ((${#claimed[@]} == threads)) && break
    exec {fd}>"$lockdir/cpu$cpu.lock"
    if flock -n "$fd"; then
        claimed+=("$cpu")
    else
        exec {fd}>&-
    fi
done
for cpu in "${allowed[@]}"; do
    ((${#claimed[@]} == threads)) && break
    [[ " ${claimed[*]} " == *" $cpu "* ]] || claimed+=("$cpu")
done

cpus=$(IFS=,; echo "${claimed[*]}")
exec taskset -c "$cpus" "$@"
