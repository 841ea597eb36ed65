"""The layout of a training run directory, in one place.

`python -m spectrax.train --workdir=DIR` writes::

    DIR/checkpoints/        orbax steps: train state, data iterator, config
    DIR/run.json            what a loader needs besides the weights (RunInfo)
    DIR/config.json         the full run config, for people
    DIR/tokenizer/          the run's own copy of its tokenizer
    DIR/metrics.jsonl       one JSON record per log line
    DIR/events.out.tfevents.*  the same numbers for TensorBoard
    DIR/first_eval.json     held-out loss before the first step
    DIR/final_eval.json     the summary of a finished run
    DIR/train.lock          while a training runs: its host, pid, start time
    DIR/jax_cache/          JAX's compiled programs, reused by a restart

The trainer writes it and `spectrax.load_model` reads it; both go through
`RunDir`, so a renamed file cannot leave the two disagreeing.

DIR may be a local path or a bucket URL (`gs://bucket/runs/x`): every file
goes through `etils.epath` (as orbax's checkpoints do), so a run writes to
Cloud Storage without gcsfuse. Paths stay strings (`RunDir.path`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os

from etils import epath

from spectrax.models.config import ModelConfig

CHECKPOINTS_DIR = "checkpoints"
RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
TOKENIZER_DIR = "tokenizer"
METRICS_FILE = "metrics.jsonl"
FIRST_EVAL_FILE = "first_eval.json"
FINAL_EVAL_FILE = "final_eval.json"
COMPILATION_CACHE_DIR = "jax_cache"  # the launch scripts' name too


# ModelConfig fields a restart may change: they do not change the arrays.
RUNTIME_FIELDS = ("dtype", "attention_backend", "remat_policy")


def is_local(path: str | os.PathLike) -> bool:
  """Whether `path` is on this machine's filesystem (not `gs://...`)."""
  return "://" not in os.fspath(path)


def write_atomic(path: str | os.PathLike, text: str) -> None:
  """Writes `text` to `path` so readers see the old file or the new one,
  never half of one: locally a temporary file, fsync and a rename; in a
  bucket one object upload, which is atomic already (GCS and S3 show an
  object only once it is complete)."""
  if not is_local(path):
    epath.Path(path).write_text(text, encoding="utf-8")
    return
  path = os.fspath(path)
  tmp = f"{path}.tmp.{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


class RunDirError(ValueError):
  """A run directory is missing, or its run.json is unreadable."""


def require_storage(path: str | os.PathLike) -> None:
  """A RunDirError naming the package to install when `path` is a bucket
  URL that `etils.epath` has no backend for here (`gs://` needs gcsfs, or
  TensorFlow's gfile; `s3://` s3fs), before a run writes anything."""
  path = os.fspath(path)
  if is_local(path) or importlib.util.find_spec("tensorflow") is not None:
    return
  scheme = path.split("://", 1)[0]
  try:
    import fsspec  # etils.epath's backend without TensorFlow
    fsspec.get_filesystem_class(scheme)
  except (ImportError, ValueError) as e:
    package = {"gs": "gcsfs", "s3": "s3fs", "az": "adlfs"}.get(scheme)
    fix = (f"install {package} (`pip install {package}`)" if package
           else "use a local path or a gs:// bucket")
    raise RunDirError(f"{path}: this Python cannot open {scheme}:// paths ({e}); "
                      f"{fix}, or mount the bucket and pass its local path."
                      ) from None


@dataclasses.dataclass(frozen=True)
class RunInfo:
  """The contents of run.json: how to rebuild the model and its inputs."""
  template: str  # the episode template the model was trained with
  tokenizer: str  # relative to the run directory; absolute in older runs
  tokenizer_source: str  # where the trainer copied it from
  model_config: ModelConfig
  # A LoRA run: {"config": LoraConfig.to_json(), "base": BaseIdentity.to_json()}
  # (spectrax.checkpoints.lora_base); its checkpoints hold only the adapters.
  lora: dict | None = None

  def to_json(self) -> dict:
    out = {"template": self.template, "tokenizer": self.tokenizer,
           "tokenizer_source": self.tokenizer_source,
           "model_config": json.loads(self.model_config.to_json())}
    if self.lora is not None:
      out["lora"] = self.lora
    return out


@dataclasses.dataclass(frozen=True)
class RunDir:
  """Paths inside one run directory (`path`: relative, absolute or a bucket
  URL; an `epath.Path` or other path-like is kept as its string)."""
  path: str

  def __post_init__(self):
    object.__setattr__(self, "path", os.fspath(self.path))

  @property
  def name(self) -> str:
    return os.path.basename(os.path.normpath(self.path))

  @property
  def checkpoints(self) -> str:
    return os.path.join(self.path, CHECKPOINTS_DIR)

  @property
  def run_file(self) -> str:
    return os.path.join(self.path, RUN_FILE)

  @property
  def config_file(self) -> str:
    return os.path.join(self.path, CONFIG_FILE)

  @property
  def tokenizer_dir(self) -> str:
    return os.path.join(self.path, TOKENIZER_DIR)

  @property
  def metrics_file(self) -> str:
    return os.path.join(self.path, METRICS_FILE)

  @property
  def first_eval_file(self) -> str:
    return os.path.join(self.path, FIRST_EVAL_FILE)

  @property
  def final_eval_file(self) -> str:
    return os.path.join(self.path, FINAL_EVAL_FILE)

  @property
  def compilation_cache(self) -> str:
    return os.path.join(self.path, COMPILATION_CACHE_DIR)

  def relative(self, path: str) -> str:
    """`path` (inside the run directory) relative to it."""
    return str(epath.Path(path).relative_to(epath.Path(self.path)))

  def tokenizer_path(self, info: RunInfo) -> str:
    """The run's tokenizer: its own copy moves with the directory."""
    return os.path.join(self.path, info.tokenizer)

  def write_run_info(self, info: RunInfo) -> None:
    """run.json, atomically: a crash mid-write leaves the old one whole."""
    write_atomic(self.run_file, json.dumps(info.to_json(), indent=1))

  def write_config(self, text: str) -> None:
    """config.json (the full run config, for people), atomically."""
    write_atomic(self.config_file, text)

  def has_checkpoints(self) -> bool:
    """Whether any finalized checkpoint step exists (a digits-only name;
    orbax's unfinished saves are `<step>.orbax-checkpoint-tmp*`)."""
    checkpoints = epath.Path(self.checkpoints)
    return checkpoints.is_dir() and any(
        p.name.isdigit() for p in checkpoints.iterdir())

  def read_run_info(self) -> RunInfo:
    """run.json, or a RunDirError that names the file and the fix."""
    run_file = epath.Path(self.run_file)
    if not run_file.exists():
      raise RunDirError(
          f"{self.run_file} not found: {self.path} is not a spectrax training "
          "run directory. Pass the --workdir of a `python -m spectrax.train` "
          "run, or an HF model directory as --hf_checkpoint.")
    try:
      raw = json.loads(run_file.read_text())
    except json.JSONDecodeError as e:
      raise self._damaged(f"is not valid JSON ({e})") from e
    fields = [f.name for f in dataclasses.fields(RunInfo)
              if f.default is dataclasses.MISSING]
    missing = [name for name in fields if not isinstance(raw, dict)
               or name not in raw]
    if missing:
      raise self._damaged(f"lacks the field(s) {', '.join(missing)}")
    try:
      model_config = ModelConfig.from_json(json.dumps(raw["model_config"]))
    except (KeyError, TypeError, ValueError) as e:
      raise self._damaged(f"has a model_config spectrax cannot read "
                          f"({type(e).__name__}: {e})") from e
    return RunInfo(template=raw["template"], tokenizer=raw["tokenizer"],
                   tokenizer_source=raw["tokenizer_source"],
                   model_config=model_config, lora=raw.get("lora"))

  def check_resumable(self, model_config: ModelConfig) -> None:
    """Raises RunDirError when this run's checkpoints were trained with
    another model than `model_config` (runtime fields may differ).

    Called before a restart writes anything, so a mistaken restart leaves
    run.json, config.json and the checkpoints as they were. A run without
    checkpoints may change anything; an unreadable run.json is left to the
    restore, which compares the arrays themselves.
    """
    if not self.has_checkpoints():
      return
    try:
      saved = self.read_run_info().model_config
    except RunDirError:
      return
    differ = [f"{f.name}: {getattr(saved, f.name)!r} in the run, "
              f"{getattr(model_config, f.name)!r} now"
              for f in dataclasses.fields(ModelConfig)
              if f.name not in RUNTIME_FIELDS
              and getattr(saved, f.name) != getattr(model_config, f.name)]
    if differ:
      raise RunDirError(
          f"{self.path} holds checkpoints of another model ({'; '.join(differ)}"
          f"; from {self.run_file}). Restart with the run's own config "
          f"(saved in {self.config_file}), or pass a new --workdir to train "
          "this model from scratch. Nothing was changed.")

  def _damaged(self, what: str) -> RunDirError:
    return RunDirError(
        f"{self.run_file} {what}: restarting the run (`python -m "
        f"spectrax.train --config=... --workdir={self.path}`) rewrites it.")
