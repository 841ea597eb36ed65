#!/usr/bin/env bash
# N training processes on this machine, joined by jax.distributed (CPU: gloo).
#
#   launch/local.sh [--dry_run] N CONFIG WORKDIR [--config.key=value ...]
#   launch/local.sh 2 configs/tiny.py runs/tiny2
#
# Each process gets SPECTRAX_COORDINATOR / SPECTRAX_NUM_PROCESSES /
# SPECTRAX_PROCESS_ID (spectrax/distributed.py) and, unless set,
# SPECTRAX_CPU_DEVICES=4 CPU devices. Process i logs to WORKDIR/logs/process_i.log;
# process 0's log is also shown here. If any process fails, the others are
# stopped and its exit status is returned; SIGTERM/SIGINT are passed on, so
# the processes checkpoint and exit 0 (preemption). Rerunning the same command resumes
# from the last checkpoint. Environment: PORT (coordinator port; default: a
# free one), PYTHON (default: python), SPECTRAX_HEARTBEAT_TIMEOUT (seconds
# before the others give up on a dead process; default 60).
set -euo pipefail

dry_run=0
if [[ "${1:-}" == "--dry_run" ]]; then dry_run=1; shift; fi
if [[ $# -lt 3 ]]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
n="$1"; config="$2"; workdir="$3"; shift 3
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
  echo "launch/local.sh: N must be a positive integer, got '$n'" >&2; exit 2
fi
python_bin="${PYTHON:-python}"
port="${PORT:-$("$python_bin" -c 'import socket; s = socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')}"
cpu_devices="${SPECTRAX_CPU_DEVICES:-4}"
logs="$workdir/logs"

commands=()
for ((i = 0; i < n; i++)); do
  cmd="SPECTRAX_COORDINATOR=localhost:$port SPECTRAX_NUM_PROCESSES=$n SPECTRAX_PROCESS_ID=$i"
  cmd+=" SPECTRAX_CPU_DEVICES=$cpu_devices JAX_PLATFORMS=\${JAX_PLATFORMS:-cpu}"
  cmd+=" $python_bin -m spectrax.train --config=$config --workdir=$workdir"
  for arg in "$@"; do cmd+=" $(printf '%q' "$arg")"; done
  cmd+=" > $logs/process_$i.log 2>&1"
  commands+=("$cmd")
done

if ((dry_run)); then
  echo "mkdir -p $logs"
  for cmd in "${commands[@]}"; do echo "$cmd &"; done
  echo "wait  # any failure stops the others"
  exit 0
fi

mkdir -p "$logs"
pids=()
for cmd in "${commands[@]}"; do
  bash -c "exec env $cmd" &
  pids+=($!)
done
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
# Preemption: pass SIGTERM on; each process checkpoints and exits 0.
on_signal() {
  echo "launch/local.sh: forwarding SIGTERM (each process checkpoints and exits)" >&2
  cleanup
}
trap on_signal INT TERM
tail -n +1 -F "$logs/process_0.log" 2>/dev/null &
tail_pid=$!

status=0
alive=("${pids[@]}")
while ((${#alive[@]} > 0)); do
  still=()
  for pid in "${alive[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then still+=("$pid"); continue; fi
    set +e
    wait "$pid"
    rc=$?
    set -e
    if ((rc != 0 && status == 0)); then
      status=$rc
      echo "launch/local.sh: a process exited with status $rc; stopping the others (logs: $logs)" >&2
      cleanup
    fi
  done
  alive=("${still[@]}")
  if ((${#alive[@]} > 0)); then sleep 1; fi
done
kill "$tail_pid" 2>/dev/null || true
exit "$status"
