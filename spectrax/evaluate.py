r"""Runs the Spectrum evaluation suites and writes the report.

  python -m spectrax.evaluate --suite=all --suite_dir=suite --out=eval_out \
      --model=base=hf:/ckpt/gemma-3-1b-pt#colon \
      --model=tuned=workdir:runs/st@2000

A model is `NAME=hf:DIR` (an HF checkpoint directory) or
`NAME=workdir:DIR[@STEP]` (a spectrax training run, newest step by default),
optionally followed by `#TEMPLATE` to choose its template; otherwise a
workdir's training template is used and HF checkpoints get `--template`.
`#chat` formats with the checkpoint's own chat template (instruct models):
  --model=gemma_it=hf:/ckpt/gemma-3-12b-it#chat
Models are loaded one at a time; after each, `metrics.json` and
`report.html` in `--out` are rewritten, so a crash keeps what was done.
"""

from __future__ import annotations

from absl import flags

from spectrax import cli
from spectrax.checkpoints.run_dir import RunDirError
from spectrax.checkpoints.training_state import CheckpointRestoreError
from spectrax.data.suite_reader import SuiteError
from spectrax.evaluation import runner
from spectrax.models.attention import AttentionBackendError
from spectrax.models.config import HFCheckpointError

_D = runner.EvalSettings()

_SUITE = flags.DEFINE_enum("suite", _D.suite, runner.SUITE_NAMES, "Which suite to run.")
_MODELS = flags.DEFINE_multi_string(
    "model", [], "NAME=hf:DIR or NAME=workdir:DIR[@STEP], optionally "
    "+ '#TEMPLATE'; repeat for several models.")
_SUITE_DIR = flags.DEFINE_string("suite_dir", "suite",
                                 "A built suite (python -m data_pipelines.build).")
_OUT = flags.DEFINE_string("out", "eval_out", "Report directory.")
_TEMPLATE = flags.DEFINE_string(
    "template", _D.template, "Template of models that do not record one (HF "
    "checkpoints); 'colon' suits plain pretrained models, 'chat' instruct models "
    "(the checkpoint's own chat template).")
_NUM_EPISODES = flags.DEFINE_integer("num_episodes", _D.num_episodes,
                                     "Steerability episodes per task.", lower_bound=1)
_NUM_CAPABILITY_EPISODES = flags.DEFINE_integer(
    "num_capability_episodes", _D.num_capability_episodes,
    "Capability episodes per task.", lower_bound=1)
_NUM_QUESTIONS = flags.DEFINE_integer(
    "num_questions", _D.num_questions, "Distributional questions per task (the "
    "release evaluates at most 1000).", lower_bound=1)
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", _D.num_samples,
                                    "Diversity generations per prompt.", lower_bound=1)
_MAX_TOKENS = flags.DEFINE_integer("max_tokens", _D.max_tokens, "Episode length cap.",
                                   lower_bound=1)
_SEED = flags.DEFINE_integer("seed", _D.seed, "Seed of every data choice and of sampling.",
                             lower_bound=0)
_TASKS = flags.DEFINE_list("tasks", None, "Restrict every suite to these "
                           "task names (diversity: task keys).")
_SAMPLE_BATCH = flags.DEFINE_integer(
    "sample_batch_size", _D.sample_batch_size, "Sampler rows per compiled batch (a "
    "multiple of the device count).", lower_bound=1)


def main(argv):
  del argv
  settings = runner.EvalSettings(
      suite=_SUITE.value, template=_TEMPLATE.value,
      tasks=tuple(_TASKS.value) if _TASKS.value is not None else None,
      num_episodes=_NUM_EPISODES.value,
      num_capability_episodes=_NUM_CAPABILITY_EPISODES.value,
      num_questions=_NUM_QUESTIONS.value, num_samples=_NUM_SAMPLES.value,
      max_tokens=_MAX_TOKENS.value, seed=_SEED.value,
      sample_batch_size=_SAMPLE_BATCH.value)
  path = runner.evaluate(_MODELS.value, suite_dir=_SUITE_DIR.value, out=_OUT.value,
                         settings=settings)
  print(f"report: {path}")


if __name__ == "__main__":
  cli.run(main, expected=(runner.EvalError, FileNotFoundError, RunDirError,
                          CheckpointRestoreError, SuiteError, HFCheckpointError,
                          AttentionBackendError))
