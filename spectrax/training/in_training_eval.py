"""The paper's headline numbers during training (`train.eval_suites`).

At the start of a fresh run, every `train.eval_suites_every` steps and at the
last step, a bounded slice of the evaluation suites runs on the *current*
parameters, on the training mesh (no checkpoint round trip):

  steerability    the release's fixed-k loss (docs/method.md#steerability)
                  on `train.eval_suites_episodes` test episodes per task of
                  `steerability.default_icl_tasks` (on a synthetic-only suite:
                  the train tasks' held-out instances)
  distributional  the mean Jensen-Shannon divergence over
                  `train.eval_suites_questions` questions per distributional
                  task (on the synthetic suite: `urn`)

The slices are the `spectrax.evaluation` suites themselves, seed 0, with the
run's template and tokenizer, so `python -m spectrax.evaluate
--model=m=workdir:RUN@STEP --suite=steerability --num_episodes=N
--max_tokens=M` on a checkpoint of that step gives the same numbers.

Layering: training may import evaluation and scoring (tests/test_imports.py);
neither imports training. Multi-process: every process runs every slice with
the same inputs; the scorer places each batch from the identical host rows on
the global mesh and every process reads every result, so the collectives
match; only process 0 writes (`MetricsWriter`). Nothing is drawn from the data
iterator or the train state, so resuming stays exact.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from flax import nnx

from spectrax.data.suite_reader import Suite
from spectrax.evaluation.distributional import distributional
from spectrax.evaluation.steerability import default_icl_tasks, steerability
from spectrax.evaluation.suite_inputs import CAPABILITY_TASKS, ModelBundle
from spectrax.scoring.scorer import Scorer

SUITES = ("steerability", "distributional")
SEED = 0  # `spectrax.evaluate`'s default, so its numbers match.


def default_tasks(name: str, suite: Suite) -> list[str]:
  """The tasks a slice evaluates without `train.eval_suites_tasks`."""
  if name == "steerability":
    return default_icl_tasks(suite)
  return suite.task_names(None, "distributional")


def _known_tasks(name: str, suite: Suite) -> set[str]:
  if name == "steerability":
    return set(suite.task_names(None, "icl")) - set(CAPABILITY_TASKS)
  return set(suite.task_names(None, "distributional"))


def plan_tasks(suite: Suite, names: Sequence[str],
               tasks: Sequence[str] = ()) -> dict[str, list[str]]:
  """Each slice -> its tasks; slices with no task in the suite are left out.

  Raises:
    ValueError: an unknown suite name, or `tasks` names a task none of the
      slices has (the message names the config fields).
  """
  unknown = [n for n in names if n not in SUITES]
  if unknown:
    raise ValueError(f"train.eval_suites={tuple(names)!r}: {unknown} unknown; "
                     f"choose from {SUITES} (() turns it off).")
  plan = {}
  for name in names:
    chosen = (default_tasks(name, suite) if not tasks else
              [t for t in tasks if t in _known_tasks(name, suite)])
    if chosen:
      plan[name] = chosen
  used = {t for chosen in plan.values() for t in chosen}
  missing = [t for t in tasks if t not in used]
  if missing:
    raise ValueError(f"train.eval_suites_tasks names {missing}, which no slice of "
                     f"train.eval_suites={tuple(names)!r} has in {suite.path}.")
  return plan


@dataclasses.dataclass(frozen=True)
class SliceSizes:
  """How much of each suite one evaluation runs."""
  episodes: int  # steerability episodes per task (of all; of those reaching k)
  questions: int  # distributional questions per task
  max_tokens: int  # steerability all-outputs episode cap

  def kwargs(self, name: str) -> dict:
    if name == "steerability":
      return dict(num_episodes=self.episodes, max_tokens=self.max_tokens,
                  seed=SEED, progress=False)
    return dict(num_questions=self.questions, seed=SEED, progress=False)


def headline(name: str, result: dict) -> dict[str, float | None]:
  """The logged numbers of one suite's result (`eval/...` names)."""
  s = result["summary"]
  if name == "steerability":
    return {"eval/steerability_fixed_k_loss": s["loss"],
            "eval/steerability_fixed_k_first_acc": s["first_acc"],
            "eval/steerability_all_outputs_loss": s["all_outputs"]["loss"]}
  return {"eval/distributional_js": s["js_divergence"],
          "eval/distributional_tv": s["total_variation"]}


class InTrainingEval:
  """Runs the slices on a train state's params; keeps the compiled scorer.

  Args:
    suite: the run's suite.
    plan: `plan_tasks`' result (slice -> tasks).
    sizes: the slices' sizes.
    graphdef: the model's graph (`Trainer.graphdef`).
    params: the current training params (only their structure is kept;
      `run` takes the params of the moment).
    tokenizer, template: the run's.
    mesh, rules: the training mesh and logical-axis rules.
  """

  def __init__(self, suite: Suite, plan: dict[str, list[str]], sizes: SliceSizes,
               *, graphdef, params, tokenizer, template: str, mesh, rules,
               rows_per_batch: int = 1):
    self.suite, self.plan, self.sizes = suite, plan, sizes
    self.graphdef = graphdef
    self.scorer = Scorer(nnx.merge(graphdef, params), tokenizer, mesh=mesh,
                         rules=rules, rows_per_batch=rows_per_batch,
                         same_inputs_everywhere=True)
    self.scorer.state = None  # Set per run: the train step donates params.
    self.bundle = ModelBundle(name="train", template=template,
                              tokenizer=tokenizer, scorer=self.scorer)

  def run(self, params) -> tuple[dict[str, float | None], dict[str, dict]]:
    """(logged numbers with `eval/suites_seconds`, each suite's full result)."""
    start = time.perf_counter()
    # The compiled scoring function takes the state as an argument: the same
    # structure every time, so it compiles once per row shape.
    self.scorer.state = nnx.split(nnx.merge(self.graphdef, params))[1]
    record, results = {}, {}
    try:
      for name, tasks in self.plan.items():
        fn = steerability if name == "steerability" else distributional
        results[name] = fn(self.bundle, self.suite, tasks, **self.sizes.kwargs(name))
        record.update(headline(name, results[name]))
    finally:
      self.scorer.state = None
    record["eval/suites_seconds"] = time.perf_counter() - start
    return record, results


def describe(plan: dict[str, list[str]], sizes: SliceSizes, every: int) -> str:
  """One line for the run's output: what is evaluated, how often."""
  parts = []
  for name, tasks in plan.items():
    size = (f"{sizes.episodes} episodes" if name == "steerability"
            else f"{sizes.questions} questions")
    parts.append(f"{name} ({len(tasks)} task{'s' * (len(tasks) != 1)}, {size} each)")
  return f"in-training evaluation every {every} steps: {', '.join(parts)}"
