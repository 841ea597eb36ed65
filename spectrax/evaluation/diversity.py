"""Valid output coverage (docs/method.md#valid-output-coverage): samples of the 22 generation tasks.

Each task is prompted with its description, its three examples, or both;
generations are sampled at temperature 1, cleaned, checked for validity
(`validity.py`) and measured for yield, uniqueness and coverage.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from spectrax.data import templates as templates_lib
from spectrax.data.chat_template import ChatTemplate
from spectrax.data.episodes import Message, format_episode
from spectrax.data.suite_reader import Suite
from spectrax.evaluation import metrics as metrics_lib
from spectrax.evaluation import validity
from spectrax.evaluation.suite_inputs import (ModelBundle, mean_or_none,
                                              progress_bar, task_records)

# docs/method.md#cutting-generations: sampling stops at any template's terminal token and at a
# newline, as the release's (tsor13/spectrum@5a33588
# src/spectrum/diverse_valid/eval_diverse_valid.py:102-109), so a sample that
# starts with a newline is empty and invalid.
SAMPLING_STOPS = ("<|eot_id|>", "<end_of_turn>", "<|im_end|>",
                  "<|end_of_text|>", "\n")
_REMOVED = ("<pad>", "<|endoftext|>")
DIVERSITY_VARIANTS = ("description", "examples", "both")
_SUMMARY_METRICS = ("percent_valid", "yield", "unique_gens_pct", "usable_unique",
                    "raw_unique", "pairwise_collision", "coverage")
# The release reports coverage for its `InclusionTask`s only (the 7 exact
# membership tasks: rng_1_10, the three US-state and three weekday tasks;
# eval_diverse_valid.py:181-184, averaged over them in
# eval_diverse_valid_all.py:226-230), so the summary's coverage averages
# those; per task, coverage is reported for every finite valid set.
_COVERAGE_TASK_CLASS = "InclusionTask"


def diversity_messages(record, variant: str) -> list[Message]:
  """The prompt messages of one variant: description only, the 3 examples
  only (as outputs), or both."""
  if variant not in DIVERSITY_VARIANTS:
    raise ValueError(f"unknown diversity variant {variant!r}; use one of "
                     f"{DIVERSITY_VARIANTS}.")
  messages = []
  if variant in ("description", "both"):
    messages.append(Message("description", record.descriptions[0]))
  if variant in ("examples", "both"):
    messages.extend(Message("output", e) for e in record.outputs)
  return messages


def clean_generation(text: str) -> str:
  """Post-processing (docs/method.md#cutting-generations): cut at the first newline (the release's
  sampler stops there, so a leading newline leaves an empty answer), drop
  pad/end markers, strip, cut at the earliest terminal token, strip again."""
  text = text.split("\n", 1)[0]
  for junk in _REMOVED:
    text = text.replace(junk, "")
  text = text.strip()
  cuts = [text.find(s) for s in SAMPLING_STOPS if s in text]
  return text[:min(cuts)].strip() if cuts else text


def _generation_tasks(suite: Suite, tasks: Sequence[str] | None) -> list:
  """The records of the named generation tasks (all by default)."""
  records = [r for name in suite.task_names(None, "diversity")
             for r in task_records(suite.source(name, "test"))]
  if tasks is None:
    return records
  unknown = sorted(set(tasks) - {r.id for r in records})
  if unknown:
    raise ValueError(f"unknown diversity task(s) {unknown}; the suite has "
                     f"{sorted(r.id for r in records)}.")
  return [r for r in records if r.id in set(tasks)]


def _sample_task(bundle: ModelBundle, template: templates_lib.Template, record,
                 variants: Sequence[str], num_samples: int, seed: int,
                 num_shown: int) -> dict[str, dict[str, Any]]:
  """Per variant: the metrics of one task's cleaned generations and its
  `num_shown` most common ones."""
  check = validity.check_for_record(record)
  eos = bundle.tokenizer.eos_id
  stop_ids = () if eos is None else (eos,)
  stops = SAMPLING_STOPS
  if isinstance(template, ChatTemplate):
    # docs/method.md#chat-template: also stop at the model's own end-of-turn token.
    stop_ids += (template.end_of_turn_id,)
    stops += (template.stop,) if template.stop not in stops else ()
  prompts = ["".join(text for text, _ in format_episode(
      diversity_messages(record, v), template, add_generation_prompt=True))
             for v in variants]
  samples = bundle.sampler.sample(
      prompts, num_samples=num_samples,
      max_new_tokens=int(record.extra["max_new_tokens"]), temperature=1.0,
      top_p=1.0, top_k=0, stop_strings=stops,
      stop_token_ids=stop_ids, seed=seed)
  per_variant = {}
  for variant, raw in zip(variants, samples, strict=True):
    gens = [clean_generation(g) for g in raw]
    shown = collections.Counter(gens).most_common(num_shown)
    per_variant[variant] = {
        **metrics_lib.diversity_metrics(gens, check),
        "top": [{"text": g, "count": c, "valid": bool(check(g))}
                for g, c in shown]}
  return per_variant


def diversity(bundle: ModelBundle, suite: Suite,
              tasks: Sequence[str] | None = None, *, num_samples: int = 100,
              variants: Sequence[str] = DIVERSITY_VARIANTS, seed: int = 0,
              num_shown: int = 8, progress: bool = True) -> dict[str, Any]:
  """docs/method.md#valid-output-coverage: `num_samples` generations per (task, variant) at temperature
  1 (no top-p/top-k), cleaned, checked, and measured.

  Args:
    tasks: generation task keys (instance ids of the suite's diversity
      task); default all 22.
    num_shown: most common generations kept per (task, variant) for tables.
  """
  if bundle.sampler is None:
    raise ValueError(f"model {bundle.name!r} has no sampler; the diversity "
                     "suite samples generations.")
  records = _generation_tasks(suite, tasks)
  template = bundle.formatter("diversity")
  if isinstance(template, str):
    template = templates_lib.get_template(template)
  result: dict[str, Any] = {"template": bundle.template, "tasks": {},
                            "num_samples": num_samples}
  for rec in progress_bar(records, f"{bundle.name} diversity", len(records),
                          progress):
    result["tasks"][rec.id] = _sample_task(bundle, template, rec, variants,
                                           num_samples, seed, num_shown)
  result["summary"] = _summary(result["tasks"], records, variants)
  return result


def _summary(per_task: dict[str, dict], records, variants: Sequence[str]
             ) -> dict[str, dict[str, float | None]]:
  """Per variant, each metric's mean over tasks; coverage over the release's
  membership tasks only (`_COVERAGE_TASK_CLASS`)."""
  membership = {r.id for r in records
                if r.extra.get("task_class") == _COVERAGE_TASK_CLASS}
  out = {}
  for v in variants:
    out[v] = {k: mean_or_none(t[v][k] for t in per_task.values())
              for k in _SUMMARY_METRICS if k != "coverage"}
    out[v]["coverage"] = mean_or_none(
        t[v]["coverage"] for name, t in per_task.items() if name in membership)
  return out
