#!/usr/bin/env bash
# Train on a Cloud TPU VM slice: every worker runs the same command and
# jax.distributed connects them (spectrax/distributed.py detects the slice).
#
#   launch/tpu_pod.sh [--dry_run] ACTION [options] [-- --config.key=value ...]
#
# Actions (in the order you use them):
#   create    create the slice (queued resource with --queued, else tpu-vm create)
#   setup     copy this checkout to every worker, make its Python >= 3.11 venv,
#             install requirements, mount the bucket
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
#   --slices=N              N slices joined by DCN (multislice; a queued resource with nodes
#                           NAME-0 .. NAME-N-1); train adds --config.mesh.dcn_data=N: FSDP
#                           within each slice over ICI, data parallel across slices (default 1)
#   --python=VERSION        the workers' Python (default 3.11; the pins need >= 3.11 and TPU VM
#                           images ship 3.10): uv makes .venv with it, downloading a
#                           standalone CPython build where the image has none
#
# Environment for train (a default yields to a flag of the same name you set):
#   LIBTPU_INIT_ARGS        the XLA:TPU flags below are added for every flag you do not set;
#                           SPECTRAX_XLA_DEFAULTS=0 adds none
#   JAX_COMPILATION_CACHE_DIR  compiled programs, reused on resume (default WORKDIR/jax_cache)
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
QUEUED="${QUEUED:-0}"; SPOT="${SPOT:-0}"; SLICES="${SLICES:-1}"; PYTHON_VERSION="${PYTHON_VERSION:-3.11}"
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
    --slices=*) SLICES="${1#*=}" ;;
    --python=*) PYTHON_VERSION="${1#*=}" ;;
    --) shift; overrides=("$@"); break ;;
    *) echo "launch/tpu_pod.sh: unknown option '$1' (see the header of this script)" >&2; exit 2 ;;
  esac
  shift
done

usage() { sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
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

if ! [[ "$SLICES" =~ ^[1-9][0-9]*$ ]]; then
  echo "launch/tpu_pod.sh: --slices=$SLICES: give a positive integer" >&2; exit 2
fi
if ! [[ "$PYTHON_VERSION" =~ ^3\.([0-9]+)(\.[0-9]+)?$ ]] || ((BASH_REMATCH[1] < 11)); then
  echo "launch/tpu_pod.sh: --python=$PYTHON_VERSION: the pins need Python 3.11 or newer" >&2; exit 2
fi
RUN="${RUN:-$(basename "$CONFIG" .py)}"
WORKDIR="/gcs/$BUCKET/runs/$RUN"
REMOTE_DIR="~/spectrax"
gflags="--zone=$ZONE${PROJECT:+ --project=$PROJECT}"
# Multislice needs a queued resource; its nodes are named NAME-0 .. NAME-(N-1).
nodes=("$NAME")
if ((SLICES > 1)); then
  QUEUED=1
  nodes=()
  for ((i = 0; i < SLICES; i++)); do nodes+=("$NAME-$i"); done
fi
ssh_all() {
  local node
  for node in "${nodes[@]}"; do
    run "gcloud compute tpus tpu-vm ssh $node $gflags --worker=all --command=$(q "$1")"
  done
}

# XLA:TPU flags, as MaxText's v5p / v6e dense-model configs set them
# (benchmarks/xla_flags_library.py there).
tpu_flags=(
  # Continuation fusion: run the FSDP all-gathers asynchronously, fused with
  # the compute that does not need them, over several steps of the layer scan.
  --xla_tpu_enable_async_collective_fusion=true
  --xla_tpu_enable_async_collective_fusion_fuse_all_gather=true
  --xla_tpu_enable_async_collective_fusion_multiple_steps=true
  --xla_tpu_overlap_compute_collective_tc=true
  --xla_enable_async_all_gather=true
  # Overlap the data-parallel gradient all-reduce (over DCN across slices)
  # with the backward pass, also when the reduced arrays differ in size.
  --xla_tpu_enable_data_parallel_all_reduce_opt=true
  --xla_tpu_data_parallel_opt_different_sized_ops=true
)
case "$ACCELERATOR" in
  # 96 MiB of scoped VMEM per op (v5p and v6e have the room): bigger tiles.
  v5p-*|v6e-*) tpu_flags+=(--xla_tpu_scoped_vmem_limit_kib=98304) ;;
esac
# Adds each default whose flag name `user` does not already set.
merge_flags() {  # merge_flags USER DEFAULT...
  local user="$1" out="" f; shift
  for f in "$@"; do [[ " $user " == *" ${f%%=*}="* ]] || out+="$f "; done
  out+="$user"; printf '%s' "${out% }"
}
libtpu_args="${LIBTPU_INIT_ARGS:-}"
if [[ "${SPECTRAX_XLA_DEFAULTS:-1}" != 0 ]]; then
  libtpu_args="$(merge_flags "$libtpu_args" "${tpu_flags[@]}")"
fi

case "$action" in
  create)
    need ZONE
    if ((SLICES > 1)); then
      echo "# $SLICES slices of $ACCELERATOR, nodes ${nodes[*]}, joined by DCN"
      run "gcloud compute tpus queued-resources create $NAME $gflags --node-count=$SLICES" \
          "--node-prefix=$NAME --accelerator-type=$ACCELERATOR --runtime-version=$VERSION$( ((SPOT)) && echo ' --spot')"
      run "gcloud compute tpus queued-resources describe $NAME $gflags --format='value(state.state)'"
    elif ((QUEUED)); then
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
    echo "# Python $PYTHON_VERSION on every worker (the pins need >= 3.11; TPU VM images ship 3.10):"
    echo "# uv (pip --user, else astral.sh's installer) makes .venv with it, fetching a"
    echo "# standalone CPython build when the image has none, then installs the pins."
    run "tar czf /tmp/spectrax-src.tgz --exclude=.git --exclude=.venv --exclude=runs --exclude=suite ."
    for node in "${nodes[@]}"; do
      run "gcloud compute tpus tpu-vm scp /tmp/spectrax-src.tgz $node:/tmp/ $gflags --worker=all"
    done
    python_setup="export PATH=\$HOME/.local/bin:\$PATH && (command -v uv || python3 -m pip install --user -q uv || curl -LsSf https://astral.sh/uv/install.sh | sh) && rm -rf .venv && uv venv -q --python $PYTHON_VERSION .venv && . .venv/bin/activate && python --version && uv pip install -q -r requirements.txt 'jax[tpu]==0.10.2'"
    ssh_all "mkdir -p $REMOTE_DIR && tar xzf /tmp/spectrax-src.tgz -C $REMOTE_DIR && cd $REMOTE_DIR && $python_setup && (command -v gcsfuse || (sudo apt-get update -q && sudo apt-get install -y -q gcsfuse)) && sudo mkdir -p /gcs/$BUCKET && sudo chown \$USER /gcs/$BUCKET && (mountpoint -q /gcs/$BUCKET || gcsfuse --implicit-dirs $BUCKET /gcs/$BUCKET)"
    ;;
  train)
    need ZONE BUCKET
    args=""
    if ((SLICES > 1)); then
      # Before the overrides, so --config.mesh.dcn_data=1 there still wins.
      args=" --config.mesh.dcn_data=$SLICES"
      echo "# mesh: FSDP within each of the $SLICES slices (ICI), data parallel across them (DCN)"
    fi
    for o in "${overrides[@]}"; do args+=" $(q "$o")"; done
    envs="LIBTPU_INIT_ARGS=\"$libtpu_args\" JAX_COMPILATION_CACHE_DIR=$WORKDIR/jax_cache"
    ssh_all "cd $REMOTE_DIR && . .venv/bin/activate && mkdir -p $WORKDIR/logs && export $envs && nohup python -m spectrax.train --config=$CONFIG --workdir=$WORKDIR --config.suite_dir=/gcs/$BUCKET/suite$args > $WORKDIR/logs/worker_\$(hostname).log 2>&1 &"
    echo "# follow with: launch/tpu_pod.sh logs --name=$NAME --zone=$ZONE --bucket=$BUCKET --run=$RUN$( ((SLICES > 1)) && echo " --slices=$SLICES")"
    ;;
  logs)
    need ZONE BUCKET
    run "gcloud compute tpus tpu-vm ssh ${nodes[0]} $gflags --worker=0 --command=$(q "tail -n 100 -F $WORKDIR/logs/worker_\$(hostname).log")"
    ;;
  status)
    need ZONE
    for node in "${nodes[@]}"; do
      run "gcloud compute tpus tpu-vm describe $node $gflags --format='value(state,acceleratorType)'"
    done
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
