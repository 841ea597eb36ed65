"""Shared fixtures: tokenizers made or fetched here, and an 8-device CPU mesh.

jax is configured before anything uses it: 8 CPU devices for sharding tests,
and one persistent compilation cache for the whole session (and the
processes tests start), so the many runs of the same tiny model compile
each program once: most of a tiny run's time is compilation (a warm run
takes ~8 s instead of ~20 s). Tests of the cache itself step out of it
(`without_session_compilation_cache`).
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
SESSION_COMPILATION_CACHE = tempfile.mkdtemp(prefix="spectrax-tests-jax-cache-")
atexit.register(shutil.rmtree, SESSION_COMPILATION_CACHE, ignore_errors=True)
os.environ.update(JAX_COMPILATION_CACHE_DIR=SESSION_COMPILATION_CACHE,
                  JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                  JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
import jax  # noqa: E402  pylint: disable=g-import-not-at-top

jax.config.update("jax_num_cpu_devices", 8)

from absl import flags  # noqa: E402  pylint: disable=g-import-not-at-top

# grain's multiprocessing reads absl flags; pytest never parses them.
flags.FLAGS.mark_as_parsed()

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("SPECTRAX_TEST_CACHE", os.path.join(REPO, ".cache"))
MISTRAL_WHEEL = "mistral-common==1.13.1"
MISTRAL_MEMBER = "mistral_common/data/tokenizer.model.v1"


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: slower tests; CI runs them too")


@pytest.fixture
def without_session_compilation_cache():
  """No compilation cache chosen, as in a fresh process without
  JAX_COMPILATION_CACHE_DIR; the session's cache comes back after."""
  from spectrax.training.run_setup import use_compilation_cache  # pylint: disable=g-import-not-at-top
  use_compilation_cache(None)
  try:
    yield
  finally:
    use_compilation_cache(SESSION_COMPILATION_CACHE)


@pytest.fixture(scope="session")
def mistral_tokenizer_path():
  """The real 32000-token SentencePiece model shipped in mistral-common."""
  path = os.path.join(CACHE, "mistral_tokenizer.model.v1")
  if os.path.exists(path):
    return path
  os.makedirs(CACHE, exist_ok=True)
  wheel_dir = os.path.join(CACHE, "wheels")
  proc = subprocess.run(
      [sys.executable, "-m", "pip", "download", "--no-deps", MISTRAL_WHEEL,
       "-d", wheel_dir, "-q"], capture_output=True, text=True)
  wheels = [f for f in os.listdir(wheel_dir)
            if f.startswith("mistral_common")] if os.path.isdir(wheel_dir) else []
  if proc.returncode != 0 or not wheels:
    pytest.skip(f"package registry unreachable, cannot fetch {MISTRAL_WHEEL}: "
                f"{proc.stderr.strip()[-300:]}")
  with zipfile.ZipFile(os.path.join(wheel_dir, wheels[0])) as z:
    # A temporary name per process: parallel test workers may both get here.
    tmp = f"{path}.tmp.{os.getpid()}"
    with z.open(MISTRAL_MEMBER) as src, open(tmp, "wb") as dst:
      dst.write(src.read())
  os.replace(tmp, path)
  return path


@pytest.fixture(scope="session")
def sp_tokenizer(tmp_path_factory):
  """A small SentencePiece model trained here, with every template's special
  tokens as single pieces."""
  from spectrax.data import templates  # pylint: disable=g-import-not-at-top
  from spectrax.data.tokenizer import load_tokenizer, train_sentencepiece  # pylint: disable=g-import-not-at-top
  words = ("Heads Tails coin flips bias draw number red blue ball urn the a "
           "Description Input Output description input output 0 1 2 3 4 5 6 "
           "7 8 9 . , : ? Question Answer").split()
  lines = [" ".join(words[(i * 7) % len(words):] + words[:i % 5])
           for i in range(400)]
  path = str(tmp_path_factory.mktemp("sp") / "test.model")
  train_sentencepiece(lines, path, vocab_size=320,
                      special_tokens=templates.all_special_tokens())
  return load_tokenizer(path)


def _coins(n_instances, ctx):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from data_pipelines.schema import Instance, Row  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng([ctx.seed, 1])
  for i in range(n_instances):
    p = rng.random()
    yield Instance(id=f"coin{i}", descriptions=[f"A coin with bias {p:.2f}."],
                   rows=[Row("Heads" if rng.random() < p else "Tails")
                         for _ in range(rng.integers(5, 80))])


def _sums(ctx):
  from data_pipelines.schema import Instance, Row  # pylint: disable=g-import-not-at-top
  del ctx
  for i in range(12):
    yield Instance(id=f"sum{i}", rows=[Row(input=f"{j} + {i}", output=str(i + j))
                                       for j in range(30)])


def _one_long_example(ctx):
  from data_pipelines.schema import Instance, Row  # pylint: disable=g-import-not-at-top
  del ctx
  yield Instance(id="long", rows=[Row(output="Heads " * 400)] * 3,
                 descriptions=["Long."])


@pytest.fixture(scope="session")
def tiny_suite_dir(tmp_path_factory):
  """A small built suite: `coins` (60 biased coins, mean k 16), `sums`
  (12 instances of "j + i" -> i + j, mean k 8) and `long` (one example too
  long for any test seq_len), with a 400-piece default tokenizer."""
  import functools  # pylint: disable=g-import-not-at-top
  from data_pipelines import build  # pylint: disable=g-import-not-at-top
  from data_pipelines.schema import TaskSpec  # pylint: disable=g-import-not-at-top
  specs = [
      TaskSpec(name="coins", suite_split="train", kind="icl",
               generate=functools.partial(_coins, 60), mean_k=16,
               chunk_all_rows=True),
      TaskSpec(name="sums", suite_split="train", kind="icl", generate=_sums,
               mean_k=8, chunk_all_rows=True,
               default_descriptions=("Add the numbers.",)),
      TaskSpec(name="long", suite_split="train", kind="icl",
               generate=_one_long_example, fixed_k=1, chunk_all_rows=True,
               test_fraction=0.0),
  ]
  out = str(tmp_path_factory.mktemp("suite"))
  errors = build.build(out, specs, seed=0, raw_dir=None)
  assert errors == []
  from spectrax.data import tokenizer_training  # pylint: disable=g-import-not-at-top
  tokenizer_training.train_default_tokenizer(out, vocab_size=400)
  return out


def tiny_train_config(suite_dir, **train):
  """The tiny config shrunk further for tests: 2 layers of width 32, rows of
  64 tokens, 8 steps; `train` overrides `config.train` fields."""
  from configs import tiny  # pylint: disable=g-import-not-at-top
  c = tiny.get_config()
  c.suite_dir = suite_dir
  c.build_suite_if_missing = False
  c.data.tasks = ("coins", "sums")
  c.data.seq_len, c.data.max_tokens, c.data.batch_size = 64, 65, 8
  c.data.num_packing_bins = 8
  hf = c.model.hf_config
  hf.hidden_size, hf.intermediate_size, hf.num_hidden_layers = 32, 64, 2
  hf.num_attention_heads, hf.num_key_value_heads, hf.head_dim = 2, 1, 16
  hf.sliding_window, hf.query_pre_attn_scalar = 16, 16
  c.optimizer.warmup_steps = 2
  c.train.update(dict(num_steps=8, log_every=1, eval_every=4, eval_batches=2,
                      checkpoint_every=2, keep_checkpoints=3,
                      peak_flops_per_device=1e9,
                      eval_suites=()))  # on: tests/test_in_training_eval.py
  c.train.update(train)
  return c


@pytest.fixture(scope="session")
def tiny_run(tiny_suite_dir, tmp_path_factory):
  """`(workdir, summary)` of an uninterrupted 8-step `tiny_train_config` run."""
  from spectrax.training import loop as train_lib  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path_factory.mktemp("tiny_run"))
  summary = train_lib.train(tiny_train_config(tiny_suite_dir), workdir)
  return workdir, summary


def tiny_train_flags(suite_dir, **train):
  """`tiny_train_config` as `--config.key=value` flags over configs/tiny.py."""
  from configs import tiny  # pylint: disable=g-import-not-at-top

  def flat(d, prefix=""):
    for k, v in d.items():
      if hasattr(v, "items"):
        yield from flat(v, f"{prefix}{k}.")
      else:
        yield f"{prefix}{k}", v

  base = dict(flat(tiny.get_config()))
  out = []
  for key, value in flat(tiny_train_config(suite_dir, **train)):
    if key not in base or base[key] != value:
      if isinstance(value, tuple):
        value = "(" + "".join(f"{v!r}," for v in value) + ")"
      out.append(f"--config.{key}={value}")
  return out


# --- The evaluation suites' tests (test_steerability.py, test_distributional.py, ...).


@pytest.fixture(scope="session")
def eval_suite(tmp_path_factory):
  """A small built suite with one task of each evaluation kind
  (`eval_fakes.build_eval_suite`)."""
  import eval_fakes  # pylint: disable=g-import-not-at-top
  from spectrax.data.suite_reader import Suite  # pylint: disable=g-import-not-at-top
  return Suite(eval_fakes.build_eval_suite(str(tmp_path_factory.mktemp("eval_suite"))))


@pytest.fixture
def memory_bucket():
  """`gs://bucket`, served from memory: fsspec's MemoryFileSystem stands in
  for gcsfs behind `etils.epath`, so a bucket workdir's code paths run here."""
  import importlib  # pylint: disable=g-import-not-at-top
  import fsspec  # pylint: disable=g-import-not-at-top
  from fsspec.implementations.memory import MemoryFileSystem  # pylint: disable=g-import-not-at-top
  for protocol in ("gs", "gcs"):  # epath asks fsspec for "gcs"
    fsspec.register_implementation(protocol, MemoryFileSystem, clobber=True)
  try:
    yield "gs://bucket"
  finally:
    registered = importlib.import_module("fsspec.registry")._registry  # pylint: disable=protected-access
    for protocol in ("gs", "gcs"):
      registered.pop(protocol, None)
    MemoryFileSystem.store.clear()
