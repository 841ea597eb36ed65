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

The trainer writes it and `spectrax.load_model` reads it; both go through
`RunDir`, so a renamed file cannot leave the two disagreeing.
"""

from __future__ import annotations

import dataclasses
import json
import os

from spectrax.models.config import ModelConfig

CHECKPOINTS_DIR = "checkpoints"
RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
TOKENIZER_DIR = "tokenizer"
METRICS_FILE = "metrics.jsonl"
FIRST_EVAL_FILE = "first_eval.json"
FINAL_EVAL_FILE = "final_eval.json"


# ModelConfig fields a restart may change: they do not change the arrays.
RUNTIME_FIELDS = ("dtype", "attention_backend", "remat_policy")


def write_atomic(path: str, text: str) -> None:
  """Writes `text` to `path` through a temporary file and a rename, so
  readers see the old file or the new one, never half of one."""
  tmp = f"{path}.tmp.{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


class RunDirError(ValueError):
  """A run directory is missing, or its run.json is unreadable."""


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
  """Paths inside one run directory (`path`, relative or absolute)."""
  path: str

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
    return os.path.isdir(self.checkpoints) and any(
        n.isdigit() for n in os.listdir(self.checkpoints))

  def read_run_info(self) -> RunInfo:
    """run.json, or a RunDirError that names the file and the fix."""
    if not os.path.exists(self.run_file):
      raise RunDirError(
          f"{self.run_file} not found: {self.path} is not a spectrax training "
          "run directory. Pass the --workdir of a `python -m spectrax.train` "
          "run, or an HF model directory as --hf_checkpoint.")
    try:
      with open(self.run_file) as f:
        raw = json.load(f)
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
