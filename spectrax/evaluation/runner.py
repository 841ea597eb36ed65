r"""Runs the Spectrum evaluation suites on several models and writes the report.

  from spectrax.evaluation import runner
  runner.evaluate(["base=hf:/ckpt/gemma-3-1b-pt#colon", "tuned=workdir:runs/st@2000"],
                  suite_dir="suite", out="eval_out",
                  settings=runner.EvalSettings(suite="distributional"))

The command line is `python -m spectrax.evaluate` (spectrax/evaluate.py).
A model is `NAME=hf:DIR` (an HF checkpoint directory) or
`NAME=workdir:DIR[@STEP]` (a spectrax training run, newest step by default),
optionally followed by `#TEMPLATE` to choose its template; otherwise a
workdir's training template is used and HF checkpoints get
`settings.template`. `#chat` (or `--template=chat`) formats with the
checkpoint's own chat template, for instruct comparators
(docs/method.md#templates). Models are loaded one at a time; after each,
`metrics.json` and `report.html` in `out` are rewritten, so a crash keeps what
was done.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import math
import os
import re
import time
from collections.abc import Sequence

import numpy as np

from spectrax.checkpoints.loading import load_model
from spectrax.data import templates as templates_lib
from spectrax.data.chat_template import ChatTemplate, ChatTemplateError
from spectrax.data.suite_reader import Suite
from spectrax.evaluation import report, suites
from spectrax.evaluation.steerability import default_icl_tasks
from spectrax.parallel import sharding
from spectrax.scoring.sampler import Sampler
from spectrax.scoring.scorer import Scorer

log = logging.getLogger(__name__)

SUITE_NAMES = (*suites.SUITES, "all")


class EvalError(ValueError):
  """A model or setting given wrongly; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class EvalSettings:
  """What every model is evaluated on; the `python -m spectrax.evaluate` flags.

  Attributes:
    suite: one of `suites.SUITES`, or "all".
    template: for models that do not record one (HF checkpoints); "colon"
      suits plain pretrained models, "chat" instruct models (their own chat
      template).
    tasks: restrict every suite to these task names (diversity: task keys).
    num_episodes: steerability episodes per task (of those that reach the
      task's k), 1000 as the release's `--max_eval_examples 1000`
      (tsor13/spectrum@5a33588 README.md:38-40,
      launch_configs/icl_spectrum.yaml:19).
    num_capability_episodes: capability episodes per task; the release
      scores capability sets with the same eval_icl.py runs, so 1000 too.
    num_questions: distributional questions per task (the release evaluates
      at most 1000).
    num_samples: diversity generations per prompt.
    max_tokens: episode length cap.
    seed: seed of every data choice and of sampling.
    sample_batch_size: sampler rows per compiled batch (a multiple of the
      device count).
  """

  suite: str = "all"
  template: str = "colon"
  tasks: tuple[str, ...] | None = None
  num_episodes: int = 1000
  num_capability_episodes: int = 1000
  num_questions: int = 1000
  num_samples: int = 100
  max_tokens: int = 1024
  seed: int = 0
  sample_batch_size: int = 64

  def suite_names(self) -> list[str]:
    if self.suite not in SUITE_NAMES:
      raise EvalError(f"--suite={self.suite!r}: choose one of {list(SUITE_NAMES)}.")
    return list(suites.SUITES) if self.suite == "all" else [self.suite]

  def suite_kwargs(self, name: str) -> dict:
    common = {"seed": self.seed}
    return {
        "steerability": dict(num_episodes=self.num_episodes, max_tokens=self.max_tokens,
                             **common),
        "distributional": dict(num_questions=self.num_questions, **common),
        "diversity": dict(num_samples=self.num_samples, **common),
        "capabilities": dict(num_episodes=self.num_capability_episodes,
                             max_tokens=self.max_tokens, **common),
    }[name]


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
    EvalError: naming the value and the accepted forms.
  """
  m = _MODEL_SPEC.match(text)
  if m is None:
    raise EvalError(
        f"--model={text!r}: expected NAME=hf:DIR or NAME=workdir:DIR[@STEP], "
        "optionally ending in #TEMPLATE (e.g. base=hf:/ckpt/gemma#colon).")
  if m["step"] is not None and m["kind"] != "workdir":
    raise EvalError(f"--model={text!r}: @STEP applies to workdir models "
                         "only.")
  if m["template"] is not None:
    _check_template(m["template"], f"--model={text!r}")
  return ModelSpec(m["name"], m["kind"], m["path"],
                   int(m["step"]) if m["step"] else None, m["template"])


def _check_template(name: str, where: str) -> None:
  if name == templates_lib.CHAT:  # Needs the model's tokenizer: checked once it loads.
    return
  try:
    templates_lib.get_template(name)
  except ValueError as e:
    raise EvalError(f"{where}: {e}") from None


def _default_tasks(name: str, suite: Suite) -> list[str]:
  """What the suite `name` evaluates when --tasks is not given (its own defaults)."""
  if name == "diversity":
    return sorted({r.id for t in suite.task_names(None, "diversity")
                   for r in suites.task_records(suite.source(t, "test"))})
  if name == "distributional":
    return suite.task_names(None, "distributional")
  if name == "capabilities":
    return [t for t in suites.CAPABILITY_TASKS if t in suite.tasks]
  return default_icl_tasks(suite)


def _tasks_for(name: str, suite: Suite, tasks: Sequence[str] | None
               ) -> list[str] | None:
  """`tasks` restricted to what the suite `name` evaluates."""
  if tasks is None:
    return None
  if name == "diversity":
    keys = set(_default_tasks(name, suite))
    return [t for t in tasks if t in keys]
  kind = "distributional" if name == "distributional" else "icl"
  known = set(suite.task_names(None, kind))
  if name == "capabilities":
    known &= set(suites.CAPABILITY_TASKS)
  return [t for t in tasks if t in known]


def plan_tasks(suite: Suite, settings: EvalSettings) -> dict[str, list[str] | None]:
  """Each selected suite -> its `tasks` argument (None: its defaults), leaving
  out suites with nothing to evaluate.

  Raises:
    EvalError: --tasks names a task no selected suite has, or nothing at all
      would be evaluated (an empty report is not a result).
  """
  names = settings.suite_names()
  plan, empty = {}, []
  for name in names:
    tasks = _tasks_for(name, suite, settings.tasks)
    if (tasks if tasks is not None else _default_tasks(name, suite)):
      plan[name] = tasks
    else:
      empty.append(name)
  if settings.tasks is not None:
    used = {t for tasks in plan.values() for t in tasks}
    unknown = [t for t in settings.tasks if t not in used]
    if unknown:
      raise EvalError(
          f"--tasks names {unknown}, which no selected suite ({', '.join(names)}) has in "
          f"{suite.path}; its tasks: {sorted(suite.tasks)}. Build them with `python -m "
          f"data_pipelines.build --out={suite.path} --tasks={','.join(unknown)}`.")
  if not plan:
    raise EvalError(
        f"nothing to evaluate: {suite.path} has no tasks for --suite={settings.suite} "
        f"({', '.join(empty)}: it has {sorted(suite.tasks) or 'no tasks'}). Build test tasks "
        f"with `python -m data_pipelines.build --out={suite.path}` (--list shows them).")
  for name in empty:
    log.warning("no task of the %s suite in %s%s; skipped.", name, suite.path,
                " is named by --tasks" if settings.tasks is not None else "")
  return plan


def _check_finite_summary(model: str, name: str, result: dict) -> None:
  """A headline that is NaN or infinite is a broken model or checkpoint, not a score."""
  for key, value in result.get("summary", {}).items():
    if isinstance(value, float) and not math.isfinite(value):
      raise EvalError(f"model {model!r}: the {name} headline {key}={value} is not finite; "
                      "its checkpoint is probably corrupt (try another --model=...@STEP). "
                      "Results of earlier models are in the report.")


class _FiniteScorer:
  """A model's Scorer that refuses non-finite log-probabilities: NaN there is a
  broken checkpoint, and the metrics would otherwise fail far from its name."""

  def __init__(self, scorer: Scorer, model: str):
    self._scorer, self._model = scorer, model

  def _refuse(self, what: str) -> EvalError:
    return EvalError(f"model {self._model!r}: {what} is not finite; its checkpoint is "
                     "probably corrupt (try another --model=...@STEP). Results of earlier "
                     "models are in the report.")

  def score(self, requests, **kwargs):
    for res in self._scorer.score(requests, **kwargs):
      # NaN only: an option whose probability underflows scores -inf, which
      # the distributional metrics handle (all -inf -> a uniform model).
      if any(math.isnan(x) for x in res.logprobs):
        raise self._refuse(f"the log-probability of request {res.id!r} ({res.logprobs})")
      yield res

  def score_episodes(self, token_lists):
    results = self._scorer.score_episodes(token_lists)
    for i, r in enumerate(results):
      if not (np.isfinite(r["logprob"]).all() and np.isfinite(r["top_prob"]).all()):
        raise self._refuse(f"a log-probability of episode {i}")
    return results

  def __getattr__(self, name):
    return getattr(self._scorer, name)


def evaluate_model(spec: ModelSpec, suite: Suite, settings: EvalSettings,
                   mesh, plan: dict[str, list[str] | None] | None = None) -> dict:
  """Loads one model and runs the settings' suites on it (`plan_tasks`' plan)."""
  plan = plan_tasks(suite, settings) if plan is None else plan
  names = list(plan)
  loaded = load_model(
      hf_checkpoint=spec.path if spec.kind == "hf" else None,
      workdir=spec.path if spec.kind == "workdir" else None,
      step=spec.step, mesh=mesh)
  template = spec.template or loaded.template or settings.template
  _check_template(template, f"model {spec.name!r}")
  chat = None
  if template == templates_lib.CHAT:
    try:
      chat = ChatTemplate(loaded.tokenizer)
    except ChatTemplateError as e:
      raise EvalError(f"model {spec.name!r}: {e} (choose its template with "
                      "--model=NAME=...#TEMPLATE)") from None
  elif template != "colon":
    try:
      loaded.tokenizer.require_single_tokens(
          templates_lib.get_template(template).special_tokens, template)
    except ValueError as e:
      raise EvalError(f"model {spec.name!r}: {e} (choose its template "
                           "with --model=NAME=...#TEMPLATE)") from None
  bundle = suites.ModelBundle(
      name=spec.name, template=template, tokenizer=loaded.tokenizer,
      scorer=_FiniteScorer(Scorer(loaded.model, loaded.tokenizer, mesh=mesh), spec.name),
      sampler=Sampler(loaded.model, loaded.tokenizer, mesh=mesh,
                      batch_size=settings.sample_batch_size)
      if "diversity" in names else None, chat=chat)
  out = {"_model": {"source": f"{spec.kind}:{spec.path}",
                    "loaded": loaded.name, "template": template}}
  for name, tasks in plan.items():
    start = time.time()
    out[name] = suites.SUITES[name](bundle, suite, tasks,
                                    **settings.suite_kwargs(name))
    _check_finite_summary(spec.name, name, out[name])
    out[name]["seconds"] = round(time.time() - start, 1)
    log.info("%s %s: %.0f s", spec.name, name, out[name]["seconds"])
  return out


def evaluate(models: Sequence[str | ModelSpec], *, suite_dir: str, out: str,
             settings: EvalSettings = EvalSettings()) -> str:
  """Evaluates each model in turn, rewriting the report after each.

  Args:
    models: `NAME=hf:DIR` / `NAME=workdir:DIR[@STEP]` strings (optionally
      `#TEMPLATE`) or ModelSpecs; names must be unique.
    suite_dir: a built suite (python -m data_pipelines.build).
    out: the report directory (metrics.json, report.html, PNG plots).
    settings: which suites, tasks and sizes.

  Returns:
    The path of report.html.

  Raises:
    EvalError: a malformed model, a repeated name, a wrong template, nothing
      to evaluate, or a non-finite headline metric.
    And load_model's errors for a wrong directory or step.
  """
  if not models:
    raise EvalError("give at least one --model=NAME=hf:DIR or "
                         "--model=NAME=workdir:DIR[@STEP].")
  specs = [m if isinstance(m, ModelSpec) else parse_model(m) for m in models]
  names = [s.name for s in specs]
  dupes = sorted({n for n in names if names.count(n) > 1})
  if dupes:
    raise EvalError(f"model names must be unique; repeated: {dupes}.")
  settings.suite_names()  # A wrong setting fails before any model loads.
  _check_template(settings.template, "--template")
  suite = Suite(suite_dir)
  plan = plan_tasks(suite, settings)  # Nothing to evaluate fails before any model loads.
  mesh = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 1})
  results = {}
  for spec in specs:
    results[spec.name] = evaluate_model(spec, suite, settings, mesh, plan)
    path = report.write_report(results, out)
    gc.collect()  # Drop the previous model's buffers before the next load.
  return os.path.abspath(path)
