r"""Runs the Spectrum evaluation suites (SPEC §7) and writes the report.

  python -m spectrax.evaluate --suite=all --suite_dir=suite --out=eval_out \
      --model=base=hf:/ckpt/gemma-3-1b-pt#colon \
      --model=tuned=workdir:runs/st@2000

A model is `NAME=hf:DIR` (an HF checkpoint directory) or
`NAME=workdir:DIR[@STEP]` (a spectrax training run, newest step by default),
optionally followed by `#TEMPLATE` to choose its template; otherwise a
workdir's training template is used and HF checkpoints get `--template`.
Models are loaded one at a time; after each, `metrics.json` and
`report.html` in `--out` are rewritten, so a crash keeps what was done.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import re
import time

from absl import app, flags, logging

from spectrax.parallel import sharding
from spectrax.data import templates as templates_lib
from spectrax.evaluation import report, suites
from spectrax.data.suite_reader import Suite

_SUITE = flags.DEFINE_enum("suite", "all", list(suites.SUITES) + ["all"],
                           "Which suite to run.")
_MODELS = flags.DEFINE_multi_string(
    "model", [], "NAME=hf:DIR or NAME=workdir:DIR[@STEP], optionally "
    "+ '#TEMPLATE'; repeat for several models.")
_SUITE_DIR = flags.DEFINE_string("suite_dir", "suite",
                                 "A built suite (python -m data_pipelines.build).")
_OUT = flags.DEFINE_string("out", "eval_out", "Report directory.")
_TEMPLATE = flags.DEFINE_string(
    "template", "colon", "Template of models that do not record one (HF "
    "checkpoints); 'colon' suits plain pretrained models.")
_NUM_EPISODES = flags.DEFINE_integer("num_episodes", 100,
                                     "Steerability episodes per task.")
_NUM_CAPABILITY_EPISODES = flags.DEFINE_integer(
    "num_capability_episodes", 50, "Capability episodes per task.")
_NUM_QUESTIONS = flags.DEFINE_integer(
    "num_questions", 1000, "Distributional questions per task (the release "
    "evaluates at most 1000).")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 100,
                                    "Diversity generations per prompt.")
_MAX_TOKENS = flags.DEFINE_integer("max_tokens", 1024,
                                   "Episode length cap (SPEC §2).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every data choice and "
                             "of sampling.")
_TASKS = flags.DEFINE_list("tasks", None, "Restrict every suite to these "
                           "task names (diversity: task keys).")
_SAMPLE_BATCH = flags.DEFINE_integer(
    "sample_batch_size", 64, "Sampler rows per compiled batch (a multiple of "
    "the device count).")

_MODEL_SPEC = re.compile(
    r"^(?P<name>[^=]+)=(?P<kind>hf|workdir):(?P<path>.+?)"
    r"(?:@(?P<step>\d+))?(?:#(?P<template>[A-Za-z0-9_]+))?$")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  name: str
  kind: str  # "hf" or "workdir"
  path: str
  step: int | None = None
  template: str | None = None


def parse_model(text: str) -> ModelSpec:
  """Parses one --model value.

  Raises:
    ValueError: naming the value and the accepted forms.
  """
  m = _MODEL_SPEC.match(text)
  if m is None:
    raise ValueError(
        f"--model={text!r}: expected NAME=hf:DIR or NAME=workdir:DIR[@STEP], "
        "optionally ending in #TEMPLATE (e.g. base=hf:/ckpt/gemma#colon).")
  if m["step"] is not None and m["kind"] != "workdir":
    raise ValueError(f"--model={text!r}: @STEP applies to workdir models "
                     "only.")
  if m["template"] is not None:
    templates_lib.get_template(m["template"])
  return ModelSpec(m["name"], m["kind"], m["path"],
                   int(m["step"]) if m["step"] else None, m["template"])


def _suite_kwargs(name: str) -> dict:
  common = {"seed": _SEED.value}
  return {
      "steerability": dict(num_episodes=_NUM_EPISODES.value,
                           max_tokens=_MAX_TOKENS.value, **common),
      "distributional": dict(num_questions=_NUM_QUESTIONS.value, **common),
      "diversity": dict(num_samples=_NUM_SAMPLES.value, **common),
      "capabilities": dict(num_episodes=_NUM_CAPABILITY_EPISODES.value,
                           max_tokens=_MAX_TOKENS.value, **common),
  }[name]


def _tasks_for(name: str, suite: Suite) -> list[str] | None:
  """--tasks restricted to what the suite `name` evaluates."""
  if _TASKS.value is None:
    return None
  if name == "diversity":
    keys = {r.id for t in suite.task_names(None, "diversity")
            for r in suites.task_records(suite.source(t, "test"))}
    return [t for t in _TASKS.value if t in keys]
  kind = "distributional" if name == "distributional" else "icl"
  known = set(suite.task_names(None, kind))
  if name == "capabilities":
    known &= set(suites.CAPABILITY_TASKS)
  return [t for t in _TASKS.value if t in known]


def evaluate_model(spec: ModelSpec, suite: Suite, names: list[str], mesh
                   ) -> dict:
  """Loads one model and runs the named suites on it."""
  # Imported here so `--help` and flag errors need no jax model code.
  from spectrax.checkpoints.loading import load_model  # pylint: disable=g-import-not-at-top
  from spectrax.scoring.sampler import Sampler  # pylint: disable=g-import-not-at-top
  from spectrax.scoring.scorer import Scorer  # pylint: disable=g-import-not-at-top
  loaded = load_model(
      hf_checkpoint=spec.path if spec.kind == "hf" else None,
      workdir=spec.path if spec.kind == "workdir" else None,
      step=spec.step, mesh=mesh)
  template = spec.template or loaded.template or _TEMPLATE.value
  templates_lib.get_template(template)
  if template != "colon":
    loaded.tokenizer.require_single_tokens(
        templates_lib.get_template(template).special_tokens, template)
  bundle = suites.ModelBundle(
      name=spec.name, template=template, tokenizer=loaded.tokenizer,
      scorer=Scorer(loaded.model, loaded.tokenizer, mesh=mesh),
      sampler=Sampler(loaded.model, loaded.tokenizer, mesh=mesh,
                      batch_size=_SAMPLE_BATCH.value)
      if "diversity" in names else None)
  out = {"_model": {"source": f"{spec.kind}:{spec.path}",
                    "loaded": loaded.name, "template": template}}
  for name in names:
    tasks = _tasks_for(name, suite)
    if tasks == []:
      logging.warning("--tasks names no task of the %s suite; skipped.", name)
      continue
    start = time.time()
    out[name] = suites.SUITES[name](bundle, suite, tasks,
                                    **_suite_kwargs(name))
    out[name]["seconds"] = round(time.time() - start, 1)
    logging.info("%s %s: %.0f s", spec.name, name, out[name]["seconds"])
  return out


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; use flags.")
  if not _MODELS.value:
    raise app.UsageError("give at least one --model=NAME=hf:DIR or "
                         "--model=NAME=workdir:DIR[@STEP].")
  specs = [parse_model(m) for m in _MODELS.value]
  dupes = sorted({s.name for s in specs if [t.name for t in specs].count(
      s.name) > 1})
  if dupes:
    raise app.UsageError(f"model names must be unique; repeated: {dupes}.")
  suite = Suite(_SUITE_DIR.value)
  names = list(suites.SUITES) if _SUITE.value == "all" else [_SUITE.value]
  mesh = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 1})
  results = {}
  for spec in specs:
    results[spec.name] = evaluate_model(spec, suite, names, mesh)
    path = report.write_report(results, _OUT.value)
    gc.collect()  # Drop the previous model's buffers before the next load.
  print(f"report: {os.path.abspath(path)}")


if __name__ == "__main__":
  app.run(main)
