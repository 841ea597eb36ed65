#!/usr/bin/env bash
# Train on a Cloud TPU VM slice: every worker runs the same command and
# jax.distributed connects them (spectrax/distributed.py detects the slice).
#
#   launch/tpu_pod.sh [--dry_run] ACTION [options] [-- --config.key=value ...]
#
# Actions (in the order you use them):
#   create    create the slice (queued resource with --queued, else tpu-vm create)
#   setup     copy this checkout to every worker, install requirements, mount the bucket
#   train     start `python -m spectrax.train` on all workers (in the background, nohup)
#   logs      follow worker 0's log
#   status    show the slice and whether training runs on each worker
#   stop      stop training on every worker (SIGTERM: each process checkpoints, exits 0)
#   delete    delete the slice (or the queued resource)
#
# Options (or the same names as environment variables, upper-case):
#   --name=NAME             TPU name (default spectrax)
#   --zone=ZONE             e.g. us-east5-a
#   --project=PROJECT       GCP project (default: gcloud's)
#   --accelerator=TYPE      e.g. v5p-64, v6e-32, v4-32 (default v5p-64)
#   --version=RUNTIME       TPU VM software version (default v2-alpha-tpuv5)
#   --config=FILE           spectrax config (default configs/gemma12b.py)
#   --bucket=BUCKET         GCS bucket, mounted with gcsfuse at /gcs/BUCKET on every worker
#   --run=NAME              run name: workdir /gcs/BUCKET/runs/NAME (default: config name)
#   --queued                create through a queued resource (with --spot for spot capacity)
#   --spot                  spot / preemptible capacity
#
# Everything after `--` is passed to spectrax.train (config overrides). The
# suite is read from /gcs/BUCKET/suite (build it once and copy it there).
# Resuming after preemption: run `create` (if the slice was deleted), `setup`,
# then the same `train` command: it resumes from the last checkpoint in the
# workdir, with the exact data position. --dry_run prints each command.
set -euo pipefail

dry_run=0
if [[ "${1:-}" == "--dry_run" ]]; then dry_run=1; shift; fi
action="${1:-}"
[[ -n "$action" ]] && shift

NAME="${NAME:-spectrax}"; ZONE="${ZONE:-}"; PROJECT="${PROJECT:-}"
ACCELERATOR="${ACCELERATOR:-v5p-64}"; VERSION="${VERSION:-v2-alpha-tpuv5}"
CONFIG="${CONFIG:-configs/gemma12b.py}"; BUCKET="${BUCKET:-}"; RUN="${RUN:-}"
QUEUED="${QUEUED:-0}"; SPOT="${SPOT:-0}"
overrides=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name=*) NAME="${1#*=}" ;;
    --zone=*) ZONE="${1#*=}" ;;
    --project=*) PROJECT="${1#*=}" ;;
    --accelerator=*) ACCELERATOR="${1#*=}" ;;
    --version=*) VERSION="${1#*=}" ;;
    --config=*) CONFIG="${1#*=}" ;;
    --bucket=*) BUCKET="${1#*=}" ;;
    --run=*) RUN="${1#*=}" ;;
    --queued) QUEUED=1 ;;
    --spot) SPOT=1 ;;
    --) shift; overrides=("$@"); break ;;
    *) echo "launch/tpu_pod.sh: unknown option '$1' (see the header of this script)" >&2; exit 2 ;;
  esac
  shift
done

usage() { sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
need() {
  local missing=()
  for var in "$@"; do [[ -n "${!var}" ]] || missing+=("--$(tr 'A-Z' 'a-z' <<< "$var")"); done
  if ((${#missing[@]})); then
    echo "launch/tpu_pod.sh $action: set ${missing[*]}" >&2; exit 2
  fi
}
run() {  # Print, and run unless --dry_run.
  printf '%s\n' "$*"
  if ((dry_run == 0)); then eval "$@"; fi
}
q() { local s="$1"; printf "'%s'" "${s//\'/\'\\\'\'}"; }  # single-quoted

RUN="${RUN:-$(basename "$CONFIG" .py)}"
WORKDIR="/gcs/$BUCKET/runs/$RUN"
REMOTE_DIR="~/spectrax"
gflags="--zone=$ZONE${PROJECT:+ --project=$PROJECT}"
ssh_all() { run "gcloud compute tpus tpu-vm ssh $NAME $gflags --worker=all --command=$(q "$1")"; }

case "$action" in
  create)
    need ZONE
    if ((QUEUED)); then
      run "gcloud compute tpus queued-resources create $NAME $gflags --node-id=$NAME" \
          "--accelerator-type=$ACCELERATOR --runtime-version=$VERSION$( ((SPOT)) && echo ' --spot')"
      run "gcloud compute tpus queued-resources describe $NAME $gflags --format='value(state.state)'"
    else
      run "gcloud compute tpus tpu-vm create $NAME $gflags --accelerator-type=$ACCELERATOR" \
          "--version=$VERSION$( ((SPOT)) && echo ' --spot')"
    fi
    ;;
  setup)
    need ZONE BUCKET
    run "tar czf /tmp/spectrax-src.tgz --exclude=.git --exclude=.venv --exclude=runs --exclude=suite ."
    run "gcloud compute tpus tpu-vm scp /tmp/spectrax-src.tgz $NAME:/tmp/ $gflags --worker=all"
    ssh_all "mkdir -p $REMOTE_DIR && tar xzf /tmp/spectrax-src.tgz -C $REMOTE_DIR && cd $REMOTE_DIR && python3 -m venv .venv && . .venv/bin/activate && pip install -q -r requirements.txt && pip install -q 'jax[tpu]==0.10.2' && (command -v gcsfuse || (sudo apt-get update -q && sudo apt-get install -y -q gcsfuse)) && sudo mkdir -p /gcs/$BUCKET && sudo chown \$USER /gcs/$BUCKET && (mountpoint -q /gcs/$BUCKET || gcsfuse --implicit-dirs $BUCKET /gcs/$BUCKET)"
    ;;
  train)
    need ZONE BUCKET
    args=""
    for o in "${overrides[@]}"; do args+=" $(q "$o")"; done
    ssh_all "cd $REMOTE_DIR && . .venv/bin/activate && mkdir -p $WORKDIR/logs && nohup python -m spectrax.train --config=$CONFIG --workdir=$WORKDIR --config.suite_dir=/gcs/$BUCKET/suite$args > $WORKDIR/logs/worker_\$(hostname).log 2>&1 &"
    echo "# follow with: launch/tpu_pod.sh logs --name=$NAME --zone=$ZONE --bucket=$BUCKET --run=$RUN"
    ;;
  logs)
    need ZONE BUCKET
    run "gcloud compute tpus tpu-vm ssh $NAME $gflags --worker=0 --command=$(q "tail -n 100 -F $WORKDIR/logs/worker_\$(hostname).log")"
    ;;
  status)
    need ZONE
    run "gcloud compute tpus tpu-vm describe $NAME $gflags --format='value(state,acceleratorType)'"
    ssh_all "pgrep -af 'spectrax.train' || echo 'not training'"
    ;;
  stop)
    need ZONE
    ssh_all "pkill -TERM -f 'python -m spectrax.train' || true"
    ;;
  delete)
    need ZONE
    if ((QUEUED)); then
      run "gcloud compute tpus queued-resources delete $NAME $gflags --force --quiet"
    else
      run "gcloud compute tpus tpu-vm delete $NAME $gflags --quiet"
    fi
    ;;
  *) usage ;;
esac
