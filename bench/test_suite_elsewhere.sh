#!/usr/bin/env bash
# The test suite as it would run on another 2-core machine (docs/timing.md, "On other CPUs, emulated"): the
# 2-core machines here are AMD EPYC or Intel Xeon, and an Intel one ran the bundled training about 1.6x slower
# and, with the same seed, to another curve (its floating-point kernels differ). Without such a machine, both
# differences can be made here:
#   KERNELS=avx2     torch's own kernels, oneDNN's and MKL's at most AVX2 (this CPU has AVX-512): other sums,
#                    other curves, as on another CPU kind
#   KERNELS=generic  torch's unvectorised kernels, oneDNN at most SSE4.1, MKL in its compatible mode
#   SLOWDOWN=1.6     the whole suite under a CPU quota of nproc/1.6 CPUs (a cgroup; root, cgroup v1 or v2)
# then runs bench/test_suite_timing.sh (machine, versions, wall and CPU time, slowest tests) with the arguments.
#   KERNELS=avx2 bench/test_suite_elsewhere.sh
#   SLOWDOWN=1.6 bench/test_suite_elsewhere.sh
set -euo pipefail
cd "$(dirname "$0")/.."
case "${KERNELS:-}" in
  "") ;;
  avx2) export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ;;
  generic) export ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_CBWR=COMPATIBLE ;;
  *) echo "KERNELS: avx2 or generic, not '$KERNELS'" >&2; exit 2 ;;
esac
[ -n "${KERNELS:-}" ] && echo "kernels: $KERNELS (ATEN_CPU_CAPABILITY=$ATEN_CPU_CAPABILITY)"

if [ -n "${SLOWDOWN:-}" ]; then
  quota=$(awk -v cpus="$(nproc)" -v s="$SLOWDOWN" 'BEGIN { if (s + 0 < 1) exit 1; printf "%d", cpus / s * 100000 }') ||
    { echo "SLOWDOWN: a factor of at least 1, not '$SLOWDOWN'" >&2; exit 2; }
fi
make -s setup  # unthrottled: set-up is no part of the suite's time
if [ -z "${SLOWDOWN:-}" ]; then
  exec bench/test_suite_timing.sh "$@"
fi
if [ -w /sys/fs/cgroup/cpu ]; then  # cgroup v1
  group=/sys/fs/cgroup/cpu/algoprogress-slowdown-$$
  mkdir "$group"
  echo 100000 > "$group/cpu.cfs_period_us"
  echo "$quota" > "$group/cpu.cfs_quota_us"
elif [ -w /sys/fs/cgroup/cgroup.subtree_control ] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then  # v2
  echo +cpu > /sys/fs/cgroup/cgroup.subtree_control
  group=/sys/fs/cgroup/algoprogress-slowdown-$$
  mkdir "$group"
  echo "$quota 100000" > "$group/cpu.max"
else
  echo "SLOWDOWN needs a writable cgroup cpu controller (run as root)" >&2
  exit 2
fi
echo "slowdown: $SLOWDOWN (a CPU quota of $(awk -v q="$quota" 'BEGIN { print q / 100000 }') CPUs of $(nproc))"
status=0
( echo "$BASHPID" > "$group/cgroup.procs" && exec bench/test_suite_timing.sh "$@" ) || status=$?
# the group is removable once its last process has ended (the SLURM daemons a test started end with it)
for _ in $(seq 60); do rmdir "$group" 2>/dev/null && break; sleep 1; done
[ ! -d "$group" ] || echo "note: $group still holds processes; rmdir it once they have ended" >&2
exit "$status"
