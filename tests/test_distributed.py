"""Several real processes on this machine, joined by jax.distributed (gloo).

Two training processes equal one process with the same global batch, mesh
shape and data shards; a two-process checkpoint restores in two processes and
continues exactly; a two-process scoring job writes every id once; a process
that dies makes the other exit with JAX's error instead of hanging.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import tiny_train_config, tiny_train_flags
from spectrax.parallel import distributed
from spectrax.training import loop as train_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCAL = os.path.join(REPO, "launch", "local.sh")
TIMEOUT = 600


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _env(**extra):
  env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAX_")}
  env.update(JAX_PLATFORMS="cpu", PYTHON=sys.executable, **extra)
  return env


def _launch(workdir, flags, **env):
  """`launch/local.sh 2 configs/tiny.py WORKDIR FLAGS` with 4 CPU devices each."""
  proc = subprocess.run(["bash", LOCAL, "2", "configs/tiny.py", workdir, *flags], cwd=REPO,
                        env=_env(SPECTRAX_CPU_DEVICES="4", **env), capture_output=True,
                        text=True, timeout=TIMEOUT)
  logs = "".join(open(os.path.join(workdir, "logs", f)).read()[-2000:]
                 for f in sorted(os.listdir(os.path.join(workdir, "logs"))))
  assert proc.returncode == 0, proc.stderr[-2000:] + logs
  return proc


def _records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def _losses(workdir):
  return [(r["step"], r["loss"]) for r in _records(workdir) if "loss" in r]


def _evals(workdir):
  return [(r["step"], r["eval_loss"]) for r in _records(workdir) if "eval_loss" in r]


# -- settings ----------------------------------------------------------------


def test_resolve_from_arguments_environment_and_platform():
  s = distributed.resolve("10.0.0.2:8476", 4, 3, env={})
  assert (s.coordinator_address, s.num_processes, s.process_id, s.source) == (
      "10.0.0.2:8476", 4, 3, "arguments")
  env = {"SPECTRAX_COORDINATOR": "h:1", "SPECTRAX_NUM_PROCESSES": "2",
         "SPECTRAX_PROCESS_ID": "1"}
  assert distributed.resolve(env=env).source == "environment"
  assert distributed.resolve(env={"TPU_WORKER_HOSTNAMES": "a,b"}).source == "Cloud TPU"
  assert distributed.resolve(env={"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}).source == "SLURM"
  assert not distributed.resolve(env={"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}).multi_process
  assert not distributed.resolve(env={}).multi_process
  assert not distributed.resolve("h:1", 1, 0, env={}).multi_process


@pytest.mark.parametrize("args, env, message", [
    (("h:1", None, None), {}, "set --num_processes, --process_id too"),
    ((None, None, None), {"SPECTRAX_COORDINATOR": "h:1"},
     "set SPECTRAX_NUM_PROCESSES, SPECTRAX_PROCESS_ID too"),
    (("h:1", 2, 2), {}, "0 <= process_id < num_processes"),
    (("host", 2, 0), {}, "give host:port"),
    ((None, None, None), {"SPECTRAX_COORDINATOR": "h:1", "SPECTRAX_NUM_PROCESSES": "two",
                          "SPECTRAX_PROCESS_ID": "0"}, "expected an integer"),
])
def test_bad_settings_say_what_to_set(args, env, message):
  with pytest.raises(ValueError, match=message.replace("(", r"\(")):
    distributed.resolve(*args, env=env)


def test_local_launcher_dry_run_prints_every_command():
  out = subprocess.run(["bash", LOCAL, "--dry_run", "3", "configs/tiny.py", "runs/x",
                        "--config.train.num_steps=5"], cwd=REPO, env=_env(PORT="4321"),
                       capture_output=True, text=True, check=True).stdout.splitlines()
  assert out[0] == "mkdir -p runs/x/logs" and out[-1].startswith("wait")
  for i, line in enumerate(out[1:4]):
    assert (f"SPECTRAX_COORDINATOR=localhost:4321 SPECTRAX_NUM_PROCESSES=3 "
            f"SPECTRAX_PROCESS_ID={i} ") in line
    assert line.endswith(f"--workdir=runs/x --config.train.num_steps=5 > "
                         f"runs/x/logs/process_{i}.log 2>&1 &")


# -- training ----------------------------------------------------------------


@pytest.fixture(scope="module")
def two_process_run(tiny_suite_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("two"))
  _launch(workdir, tiny_train_flags(tiny_suite_dir))
  return workdir


@pytest.mark.slow
def test_two_processes_equal_one_with_the_same_global_batch(two_process_run, tiny_suite_dir,
                                                             tmp_path):
  # One process, 8 devices (conftest), the same 2 data shards and mesh shape.
  c = tiny_train_config(tiny_suite_dir)
  c.data.shards = 2
  train_lib.train(c, str(tmp_path))
  one, two = _losses(str(tmp_path)), _losses(two_process_run)
  assert [s for s, _ in two] == list(range(1, 9))
  # Same data and maths; only the order of cross-process reductions differs.
  np.testing.assert_allclose([l for _, l in two], [l for _, l in one], rtol=2e-6, atol=0)
  np.testing.assert_allclose([l for _, l in _evals(two_process_run)],
                             [l for _, l in _evals(str(tmp_path))], rtol=2e-6, atol=0)
  # Throughput counts every process's tokens: the same tokens as one process.
  rec_two = [r for r in _records(two_process_run) if "loss" in r]
  rec_one = [r for r in _records(str(tmp_path)) if "loss" in r]
  assert [r["data/nonpad_tokens"] for r in rec_two] == [r["data/nonpad_tokens"] for r in rec_one]
  assert [r["data/rows"] for r in rec_two] == [8 * s for s in range(1, 9)]
  logs = os.listdir(os.path.join(two_process_run, "logs"))
  assert sorted(logs) == ["process_0.log", "process_1.log"]


@pytest.mark.slow
def test_node_local_mesh_over_two_processes_trains_like_one(tiny_suite_dir, tmp_path):
  """mesh.dcn_data=-1: each process's 4 devices are one data row (FSDP within
  a "node", data parallel across: create_hybrid_device_mesh); same losses."""
  two = str(tmp_path / "two")
  os.makedirs(two)
  _launch(two, tiny_train_flags(tiny_suite_dir, num_steps=3, eval_every=0) +
          ["--config.mesh.dcn_data=-1"])
  c = tiny_train_config(tiny_suite_dir, num_steps=3, eval_every=0)
  c.data.shards = 2
  train_lib.train(c, str(tmp_path / "one"))
  one = _losses(str(tmp_path / "one"))
  assert [s for s, _ in _losses(two)] == [1, 2, 3]
  np.testing.assert_allclose([l for _, l in _losses(two)], [l for _, l in one], rtol=1e-5,
                             atol=0)


@pytest.mark.slow
def test_two_process_checkpoint_resumes_exactly(two_process_run, tiny_suite_dir, tmp_path):
  workdir = str(tmp_path)
  _launch(workdir, tiny_train_flags(tiny_suite_dir, stop_after=4))
  assert [s for s, _ in _losses(workdir)] == [1, 2, 3, 4]
  data_dir = os.path.join(workdir, "checkpoints", "4", "data")
  assert sorted(f for f in os.listdir(data_dir) if f.startswith("process_")) == [
      "process_0-of-2.json", "process_1-of-2.json"]
  proc = _launch(workdir, tiny_train_flags(tiny_suite_dir))
  assert "resumed from step 4" in open(os.path.join(workdir, "logs", "process_0.log")).read()
  assert proc.returncode == 0
  # The same processes and collectives as the uninterrupted run: identical.
  assert _losses(workdir) == _losses(two_process_run)
  assert _evals(workdir) == _evals(two_process_run)


def _params(workdir):
  """The weights of the run's latest checkpoint."""
  import jax  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from spectrax.checkpoints.loading import load_model  # pylint: disable=g-import-not-at-top
  model = load_model(workdir=workdir).model
  return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]


@pytest.mark.slow
def test_the_end_of_the_data_is_agreed_in_the_step(tiny_suite_dir, tmp_path):
  """One pass over 2 data shards of 27 and 28 batches: process 0 runs out
  first and sends empty rows; step 29, the first with no data anywhere, and
  step 30, queued before the loop read 29's outputs (no log or checkpoint
  there), change nothing. The run ends at step 28 with the state of one
  process reading both shards, which stops when its iterator ends."""
  train = dict(num_steps=100, log_every=7, eval_every=0, checkpoint_every=100)
  two = str(tmp_path / "two")
  os.makedirs(two)
  _launch(two, tiny_train_flags(tiny_suite_dir, **train) + ["--config.data.num_epochs=1"])
  c = tiny_train_config(tiny_suite_dir, **train)
  c.data.shards, c.data.num_epochs = 2, 1
  one = str(tmp_path / "one")
  assert train_lib.train(c, one)["step"] == 28
  assert "data exhausted after step 28" in open(os.path.join(two, "logs", "process_0.log")).read()
  assert [s for s, _ in _losses(two)] == [7, 14, 21, 28]
  np.testing.assert_allclose([l for _, l in _losses(two)], [l for _, l in _losses(one)],
                             rtol=2e-6, atol=0)
  assert sorted(os.listdir(os.path.join(two, "checkpoints"))) == ["28"]
  for a, b in zip(_params(two), _params(one)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def _start_two_trainers(suite_dir, workdir, **env):
  """Two `spectrax.train` processes (2 CPU devices each) on a long run, once
  they have logged two lines; `env` is added to each one's environment."""
  flags = tiny_train_flags(suite_dir, num_steps=100000, eval_every=0,
                           checkpoint_every=100000)
  port = _free_port()
  procs = [subprocess.Popen(
      [sys.executable, "-m", "spectrax.train", "--config=configs/tiny.py",
       f"--workdir={workdir}", *flags], cwd=REPO, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True,
      env=_env(SPECTRAX_COORDINATOR=f"localhost:{port}", SPECTRAX_NUM_PROCESSES="2",
               SPECTRAX_PROCESS_ID=str(i), SPECTRAX_CPU_DEVICES="2", **env))
      for i in range(2)]
  metrics = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + 300
  while time.time() < deadline and not (
      os.path.exists(metrics) and len(open(metrics).readlines()) >= 2):
    assert procs[0].poll() is None, procs[0].communicate()[0][-3000:]
    time.sleep(0.5)
  return procs


@pytest.mark.slow
def test_a_signal_to_one_process_stops_both_at_one_step(tiny_suite_dir, tmp_path):
  """Without JAX's preemption service, SIGTERM reaches the Python guard of
  the one process it is sent to; the step tells the other, and both save
  the same step and exit 0."""
  workdir = str(tmp_path)
  procs = _start_two_trainers(tiny_suite_dir, workdir, JAX_ENABLE_PREEMPTION_SERVICE="false")
  procs[1].send_signal(signal.SIGTERM)
  outs = [p.communicate(timeout=300)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
  saved = [int(l.split("saving step ")[1].split()[0]) for l in outs[0].splitlines()
           if "preempted: saving step" in l]
  assert len(saved) == 1 and saved[0] >= 1, outs[0][-3000:]
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == [str(saved[0])]
  data_dir = os.path.join(workdir, "checkpoints", str(saved[0]), "data")
  assert sorted(f for f in os.listdir(data_dir) if f.startswith("process_")) == [
      "process_0-of-2.json", "process_1-of-2.json"]


@pytest.mark.slow
def test_a_dead_process_stops_the_other(tiny_suite_dir, tmp_path):
  procs = _start_two_trainers(tiny_suite_dir, str(tmp_path), SPECTRAX_HEARTBEAT_TIMEOUT="10")
  procs[1].send_signal(signal.SIGKILL)
  killed = time.time()
  out, _ = procs[0].communicate(timeout=120)
  waited = time.time() - killed
  procs[1].wait()
  assert procs[0].returncode != 0
  # JAX's coordination service (missed heartbeats), or gloo noticing the dead
  # peer first inside a collective: either way a named error, not a hang.
  markers = ("another task died", "stopped sending heartbeats", "gloo", "Connection closed",
             "Socket closed")
  assert any(m in out for m in markers), out[-3000:]
  assert waited < 60, waited  # Heartbeat timeout 10 s, plus detection slack.


# -- scoring -------------------------------------------------------------------


@pytest.mark.slow
def test_two_process_scoring_writes_every_id_once(tiny_run, tmp_path):
  workdir, _ = tiny_run
  rng = np.random.default_rng(0)
  words = ["Heads", "Tails", "coin", "red", "blue", "urn", "draw", "number"]
  lines = [{"id": f"q{i}", "prompt": " ".join(rng.choice(words, rng.integers(3, 30))),
            "options": [" " + w for w in rng.choice(words, 3, replace=False)]}
           for i in range(15)]
  requests = tmp_path / "requests.jsonl"
  requests.write_text("".join(json.dumps(l) + "\n" for l in lines))
  out = tmp_path / "scores.jsonl"
  port = _free_port()
  args = [sys.executable, "-m", "spectrax.score", f"--input={requests}", f"--output={out}",
          f"--workdir={workdir}", "--buckets=128", "--rows_per_batch=2", "--no_progress"]
  procs = [subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True,
                            env=_env(SPECTRAX_COORDINATOR=f"localhost:{port}",
                                     SPECTRAX_NUM_PROCESSES="2", SPECTRAX_PROCESS_ID=str(i),
                                     SPECTRAX_CPU_DEVICES="2"))
           for i in range(2)]
  outs = [p.communicate(timeout=TIMEOUT)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
  got = [json.loads(l) for l in out.read_text().splitlines()]
  assert sorted(g["id"] for g in got) == sorted(l["id"] for l in lines)
  assert not [f for f in os.listdir(tmp_path) if ".part-" in f]
  # The same scores as one process.
  from spectrax.scoring import job as score  # pylint: disable=g-import-not-at-top
  from spectrax.checkpoints.loading import load_model  # pylint: disable=g-import-not-at-top
  from spectrax.scoring.scorer import Scorer  # pylint: disable=g-import-not-at-top
  loaded = load_model(workdir=workdir)
  single = tmp_path / "single.jsonl"
  score.score_file(str(requests), str(single), Scorer(loaded.model, loaded.tokenizer,
                                                      buckets=(128,), rows_per_batch=2),
                   progress=False)
  want = {o["id"]: o for o in map(json.loads, single.read_text().splitlines())}
  for g in got:
    np.testing.assert_allclose(g["logprobs"], want[g["id"]]["logprobs"], atol=1e-5, rtol=0)
    assert g["num_tokens"] == want[g["id"]]["num_tokens"]


# -- launch scripts ------------------------------------------------------------


# What the launchers read from the environment; a test sets it, not the caller's shell.
_LAUNCH_ENV = ("XLA_FLAGS", "LIBTPU_INIT_ARGS", "XLA_PYTHON_CLIENT_MEM_FRACTION",
               "JAX_COMPILATION_CACHE_DIR", "SLURM_JOB_NUM_NODES", "NODES", "PROCESS_PER",
               "SLICES", "PYTHON_VERSION")


def _dry(*args, **env):
  clean = {k: v for k, v in _env(**env).items() if k not in _LAUNCH_ENV or k in env}
  return subprocess.run(["bash", *args], cwd=REPO, env=clean, capture_output=True,
                        text=True, check=True).stdout.splitlines()


def _line(lines, text):
  """The one line of `lines` that contains `text`."""
  found = [l for l in lines if text in l]
  assert len(found) == 1, (text, lines)
  return found[0]


def test_tpu_pod_dry_run_covers_the_lifecycle():
  common = ["--zone=us-east5-a", "--bucket=bkt", "--accelerator=v5p-64"]
  create = _dry("launch/tpu_pod.sh", "--dry_run", "create", *common)
  assert create == ["gcloud compute tpus tpu-vm create spectrax --zone=us-east5-a "
                    "--accelerator-type=v5p-64 --version=v2-alpha-tpuv5"]
  queued = _dry("launch/tpu_pod.sh", "--dry_run", "create", "--queued", "--spot", *common)
  assert queued[0].startswith("gcloud compute tpus queued-resources create spectrax")
  assert queued[0].endswith("--spot")
  setup = _dry("launch/tpu_pod.sh", "--dry_run", "setup", *common)
  assert "--worker=all" in setup[-1] and "pip install -q -r requirements.txt" in setup[-1]
  assert "gcsfuse --implicit-dirs bkt /gcs/bkt" in setup[-1]
  train = _dry("launch/tpu_pod.sh", "--dry_run", "train", *common, "--",
               "--config.optimizer.learning_rate=1e-6")
  assert "--worker=all" in train[0]
  assert ("python -m spectrax.train --config=configs/gemma12b.py "
          "--workdir=/gcs/bkt/runs/gemma12b --config.suite_dir=/gcs/bkt/suite "
          "'\\''--config.optimizer.learning_rate=1e-6'\\''") in train[0]
  stop = _dry("launch/tpu_pod.sh", "--dry_run", "stop", *common)
  assert "pkill -TERM -f" in stop[0]
  assert _dry("launch/tpu_pod.sh", "--dry_run", "delete", *common) == [
      "gcloud compute tpus tpu-vm delete spectrax --zone=us-east5-a --quiet"]
  missing = subprocess.run(["bash", "launch/tpu_pod.sh", "--dry_run", "train", "--zone=z"],
                           cwd=REPO, capture_output=True, text=True)
  assert missing.returncode == 2 and "set --bucket" in missing.stderr


TPU_FLAGS = ("--xla_tpu_enable_async_collective_fusion=true",
             "--xla_tpu_enable_async_collective_fusion_fuse_all_gather=true",
             "--xla_tpu_overlap_compute_collective_tc=true", "--xla_enable_async_all_gather=true",
             "--xla_tpu_enable_data_parallel_all_reduce_opt=true")


def test_tpu_pod_dry_run_shows_python_flags_and_the_multislice_mesh():
  common = ["--zone=z", "--bucket=bkt", "--accelerator=v5p-64"]
  # The workers' own Python >= 3.11 (TPU VM images ship 3.10), through uv.
  setup = _dry("launch/tpu_pod.sh", "--dry_run", "setup", *common)
  assert "Python 3.11 on every worker" in setup[0]
  ssh = _line(setup, "tpu-vm ssh")
  assert "uv venv -q --python 3.11 .venv && . .venv/bin/activate && python --version" in ssh
  assert "python3 -m pip install --user -q uv" in ssh
  assert "--python 3.12 .venv" in _line(
      _dry("launch/tpu_pod.sh", "--dry_run", "setup", *common, "--python=3.12"), "tpu-vm ssh")
  old = subprocess.run(["bash", "launch/tpu_pod.sh", "--dry_run", "setup", *common,
                        "--python=3.10"], cwd=REPO, capture_output=True, text=True)
  assert old.returncode == 2 and "need Python 3.11 or newer" in old.stderr
  # libtpu flags and the compilation cache, on one slice: no dcn_data.
  train = _line(_dry("launch/tpu_pod.sh", "--dry_run", "train", *common), "tpu-vm ssh")
  for flag in TPU_FLAGS + ("--xla_tpu_scoped_vmem_limit_kib=98304",):
    assert flag in train
  assert "JAX_COMPILATION_CACHE_DIR=/gcs/bkt/runs/gemma12b/jax_cache" in train
  assert "dcn_data" not in train
  v4 = _line(_dry("launch/tpu_pod.sh", "--dry_run", "train", "--zone=z", "--bucket=bkt",
                  "--accelerator=v4-32"), "tpu-vm ssh")
  assert TPU_FLAGS[0] in v4 and "scoped_vmem" not in v4
  # A flag you set replaces the default of that name; SPECTRAX_XLA_DEFAULTS=0 drops them.
  mine = _line(_dry("launch/tpu_pod.sh", "--dry_run", "train", *common,
                    LIBTPU_INIT_ARGS="--xla_enable_async_all_gather=false"), "tpu-vm ssh")
  assert "--xla_enable_async_all_gather=false" in mine
  assert "--xla_enable_async_all_gather=true" not in mine and TPU_FLAGS[0] in mine
  bare = _line(_dry("launch/tpu_pod.sh", "--dry_run", "train", *common,
                    SPECTRAX_XLA_DEFAULTS="0"), "tpu-vm ssh")
  assert 'LIBTPU_INIT_ARGS=""' in bare
  # Two slices: a multislice queued resource; FSDP within a slice, data across.
  create = _dry("launch/tpu_pod.sh", "--dry_run", "create", *common, "--slices=2")
  assert ("queued-resources create spectrax --zone=z --node-count=2 --node-prefix=spectrax "
          "--accelerator-type=v5p-64") in _line(create, "queued-resources create")
  train = _dry("launch/tpu_pod.sh", "--dry_run", "train", *common, "--slices=2", "--",
               "--config.train.num_steps=5")
  assert "FSDP within each of the 2 slices (ICI), data parallel across them (DCN)" in train[0]
  for node in ("spectrax-0", "spectrax-1"):
    line = _line(train, f"tpu-vm ssh {node} ")
    assert ("--config.mesh.dcn_data=2 '\\''--config.train.num_steps=5'\\''" in line
            and TPU_FLAGS[0] in line)
  assert _dry("launch/tpu_pod.sh", "--dry_run", "delete", *common, "--slices=2") == [
      "gcloud compute tpus queued-resources delete spectrax --zone=z --force --quiet"]


def _slurm(*args, **env):
  return _dry("launch/gpu_slurm.sbatch", "--dry_run", "configs/qwen14b.py:gpu", "/shared/q",
              *args, **env)


def _exported(lines, name):
  line = _line(lines, f"export {name}=")
  return line.split("=", 1)[1].strip("'")


GPU_FLAGS = ("--xla_gpu_enable_latency_hiding_scheduler=true",
             "--xla_gpu_enable_triton_gemm=false",
             "--xla_gpu_enable_pipelined_all_gather=true",
             "--xla_gpu_enable_pipelined_reduce_scatter=true",
             "--xla_gpu_enable_pipelined_all_reduce=true",
             "--xla_gpu_all_reduce_combine_threshold_bytes=134217728")


def test_slurm_dry_run_per_node_and_per_gpu():
  node = _slurm("--config.train.num_steps=10")
  srun = _line(node, "srun --")
  assert srun.startswith("srun --kill-on-bad-exit=1 --wait=60 bash -c ")
  assert "SPECTRAX_LOCAL_DEVICE_IDS=$(nvidia-smi" in srun
  assert "exec python -m spectrax.train --config=" in srun
  gpu = _slurm(PROCESS_PER="gpu")
  assert "SPECTRAX_LOCAL_DEVICE_IDS" not in _line(gpu, "srun --")
  with open(os.path.join(REPO, "launch", "gpu_slurm.sbatch")) as f:
    header = f.read()
  assert "#SBATCH --signal=B:TERM@300" in header and "#SBATCH --ntasks-per-node=1" in header


def test_slurm_dry_run_shows_the_flags_and_the_node_local_mesh():
  out = _slurm("--config.train.num_steps=10")
  flags = _exported(out, "XLA_FLAGS").split()
  assert set(GPU_FLAGS) <= set(flags) and len(flags) == len(set(f.split("=")[0] for f in flags))
  assert _exported(out, "JAX_COMPILATION_CACHE_DIR") == "/shared/q/jax_cache"
  assert _exported(out, "XLA_PYTHON_CLIENT_MEM_FRACTION") == "0.9"
  # Two nodes (the header's --nodes=2; SLURM_JOB_NUM_NODES in a job): FSDP on
  # each node's NVLink, data parallel over InfiniBand; your overrides come after.
  assert "mesh: --config.mesh.dcn_data=2" in _line(out, "node(s)")
  assert ("--workdir='\\''/shared/q'\\'' --config.mesh.dcn_data=2 "
          "'\\''--config.train.num_steps=10'\\''") in _line(out, "srun --")
  four = _slurm(SLURM_JOB_NUM_NODES="4", PROCESS_PER="gpu")
  assert "--config.mesh.dcn_data=4" in _line(four, "srun --")
  assert "dcn_data" not in _line(_slurm(NODES="1"), "srun --")
  # Your XLA_FLAGS win over a default of the same name and keep the rest.
  mine = _exported(_slurm(XLA_FLAGS="--xla_gpu_enable_triton_gemm=true --xla_dump_to=/d"),
                   "XLA_FLAGS").split()
  assert "--xla_gpu_enable_triton_gemm=true" in mine and "--xla_dump_to=/d" in mine
  assert "--xla_gpu_enable_triton_gemm=false" not in mine and GPU_FLAGS[0] in mine
  assert _exported(_slurm(SPECTRAX_XLA_DEFAULTS="0"), "XLA_FLAGS") == ""


def test_default_gpu_flags_are_known_to_the_pinned_jaxlib():
  """XLA aborts at start-up on a flag it does not know (a removed one): the
  launcher's defaults must all parse (GPU flags parse on a CPU jaxlib too)."""
  flags = _exported(_slurm(), "XLA_FLAGS")
  probe = [sys.executable, "-c", "import jax; jax.numpy.zeros(2).block_until_ready()"]
  ok = subprocess.run(probe, env=_env(XLA_FLAGS=flags), capture_output=True, text=True)
  assert ok.returncode == 0, ok.stderr[-2000:]
  bad = subprocess.run(probe, env=_env(XLA_FLAGS="--xla_gpu_enable_async_collectives=true"),
                       capture_output=True, text=True)
  assert bad.returncode != 0 and "Unknown flag" in bad.stderr  # The check can fail.
