"""The four evaluation suites of SPEC §7 over a built Spectrum Suite.

Each suite takes a `ModelBundle` (a model's scorer, sampler, tokenizer and
template), the `Suite`, and sizes that keep runs short, and returns a
JSON-able dict: per task, then a `summary` across tasks.

  steerability    §7a  teacher-forced loss/accuracy per output vs. position
  distributional  §7b  per-option log-likelihoods vs. target shares
  diversity       §7c  samples of the 22 generation tasks, validity, coverage
  capabilities    §7d  multiple-choice accuracy from answer-letter scores

Every random choice (which episodes, which questions) is seeded by `seed`
alone, so every model of one run sees the same data.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import tqdm

from spectrax.data import templates as templates_lib
from spectrax.data.episodes import Message, format_episode, tokenize_episode
from spectrax.evaluation import metrics as metrics_lib
from spectrax.evaluation import validity
from spectrax.data.pipeline import DataConfig, EpisodeToArrays, TaskPlan
from spectrax.data.suite_reader import Suite
from spectrax.data.tokenizer import Tokenizer, load_tokenizer

CAPABILITY_TASKS = ("mmlu", "gpqa", "hellaswag", "winogrande", "arc", "drop",
                    "truthful_qa")
# SOURCES §7: sampling stops at any template's terminal token; newlines are
# cut after stripping (so a leading newline never makes an empty answer).
SAMPLING_STOPS = ("<|eot_id|>", "<end_of_turn>", "<|im_end|>",
                  "<|end_of_text|>")
_REMOVED = ("<pad>", "<|endoftext|>")
DIVERSITY_VARIANTS = ("description", "examples", "both")
_OPTION_LINE = re.compile(r"^([A-Z]|\d{1,2})\. ", re.MULTILINE)
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


@dataclasses.dataclass
class ModelBundle:
  """What the suites need of one model.

  Attributes:
    name: the model's label in results.
    template: the template its episodes and prompts are formatted with.
    tokenizer: its tokenizer (steerability tokenises episodes itself).
    scorer: has `score(requests)` and `score_episodes(token_lists)` (see
      spectrax/scorer.py).
    sampler: has `sample(prompts, ...)` (spectrax/sampler.py); only the
      diversity suite needs it.
  """

  name: str
  template: str
  tokenizer: Tokenizer
  scorer: Any
  sampler: Any = None


def _bar(iterable: Iterable, desc: str, total: int | None, progress: bool):
  return tqdm.tqdm(iterable, desc=desc, total=total, disable=not progress,
                   leave=False)


def _mean(values: Iterable[float | None]) -> float | None:
  kept = [v for v in values if v is not None]
  return float(np.mean(kept)) if kept else None


def _request(**kwargs):
  # Imported here: the scorer module pulls in the jitted model code.
  from spectrax.scoring.scorer import ScoreRequest  # pylint: disable=g-import-not-at-top
  return ScoreRequest(**kwargs)


def _as_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
  return [{"role": m.role, "content": m.content} for m in messages]


def task_records(source, indices: Iterable[int] | None = None) -> list:
  """Records of a TaskSource by index (all by default)."""
  return [source[i] for i in (range(len(source)) if indices is None
                              else indices)]


def _sample_indices(n: int, limit: int | None, seed: int) -> list[int]:
  if limit is None or limit >= n:
    return list(range(n))
  return sorted(np.random.default_rng(seed).choice(n, limit, replace=False)
                .tolist())


def task_episodes(suite: Suite, task: str, num_episodes: int | None,
                  seed: int, split: str = "test"
                  ) -> list[tuple[int, list[Message]]]:
  """Seeded (episode index, messages) of a task split, drawn as the trainer
  draws them (SPEC §2), `num_episodes` of them at most."""
  plan = TaskPlan.make(suite.source(task, split))
  episodes = EpisodeToArrays([plan], suite.tokenizer_path or "",
                             DataConfig(suite_dir=suite.path, seed=seed))
  return [(i, episodes.messages(0, i))
          for i in _sample_indices(plan.num_episodes, num_episodes, seed)]


# --------------------------------------------------------------------------
# §7a steerability


def split_outputs(loss_mask: np.ndarray, scores: dict[str, np.ndarray],
                  first_index: int) -> list[dict[str, Any]]:
  """Per loss-bearing output of one episode: its loss and accuracies.

  Args:
    loss_mask: [n] bool, True where token i is predicted with loss (an
      output body plus its terminal token, SPEC §3).
    scores: `Scorer.score_episodes` arrays for tokens 1..n-1, [n-1] each:
      `logprob` float32, `greedy` bool, `top_prob` float32.
    first_index: example index of the first loss span (0 with a
      description, 1 without: the first output is then context).

  Returns:
    One dict per loss span in order: `example_index`, `loss` (summed NLL),
    `all_acc`, `first_acc`, `confidence` (top-1 probability at the first
    token, paired with `first_acc` for calibration) and `num_tokens`.
  """
  mask = np.asarray(loss_mask, bool)[1:]
  for key in ("logprob", "greedy", "top_prob"):
    if len(scores[key]) != len(mask):
      raise ValueError(f"score_episodes returned {len(scores[key])} "
                       f"{key!r} values for an episode of {len(mask) + 1} "
                       f"tokens; expected {len(mask)} (tokens 1..n-1).")
  edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
  starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
  out = []
  for j, (a, b) in enumerate(zip(starts, ends)):
    greedy = np.asarray(scores["greedy"][a:b], bool)
    out.append({
        "example_index": first_index + j,
        "loss": float(-np.sum(np.asarray(scores["logprob"][a:b], np.float64))),
        "all_acc": float(greedy.all()),
        "first_acc": float(greedy[0]),
        "confidence": float(scores["top_prob"][a]),
        "num_tokens": int(b - a),
    })
  return out


def _score_outputs(bundle: ModelBundle, episodes, max_tokens: int,
                   batch: int, desc: str, progress: bool):
  """Tokenises and scores episodes; per-output records and episode counts."""
  tokenized = []
  counts = dict.fromkeys(("episodes", "dropped", "truncated", "mismatch"), 0)
  for index, messages in episodes:
    ep = tokenize_episode(messages, bundle.template, bundle.tokenizer,
                          max_tokens=max_tokens)
    counts["truncated"] += int(ep.truncated)
    counts["mismatch"] += int(ep.mismatch)
    if ep.num_loss_tokens == 0:
      counts["dropped"] += 1
      continue
    first = 0 if messages[0].role == "description" else 1
    tokenized.append((index, ep, first))
  outputs = []
  chunks = range(0, len(tokenized), batch)
  for start in _bar(chunks, desc, len(chunks), progress):
    chunk = tokenized[start:start + batch]
    scored = bundle.scorer.score_episodes([ep.tokens for _, ep, _ in chunk])
    for (index, ep, first), scores in zip(chunk, scored, strict=True):
      per_output = split_outputs(ep.loss_mask, scores, first)
      if len(per_output) != ep.num_examples - first:
        raise ValueError(
            f"{desc}: episode {index} has {ep.num_examples} examples but "
            f"{len(per_output)} loss spans; its template must separate "
            "outputs with context tokens.")
      for rec in per_output:
        rec["episode"] = index
      outputs.extend(per_output)
  counts["episodes"] = len(tokenized)
  return outputs, counts


def _summary(outputs: list[dict]) -> dict[str, Any]:
  return {
      "loss": _mean(o["loss"] for o in outputs),
      "all_acc": _mean(o["all_acc"] for o in outputs),
      "first_acc": _mean(o["first_acc"] for o in outputs),
      "num_outputs": len(outputs),
  }


def steerability_metrics(outputs: list[dict], bins: int = 10, *,
                         k: int | None = None,
                         at_k_outputs: list[dict] | None = None,
                         at_k_episodes: int | None = None) -> dict[str, Any]:
  """SPEC §7a aggregation of one task's per-output records.

  Args:
    outputs: `split_outputs` records, each with its `episode` added.
    bins: calibration bins.

  Returns:
    Headline `loss`, `all_acc`, `first_acc`, `ece` (and `calibration`
    bins): over outputs with example index ≥ 1. `curve`: the means per
    example index (all indices). `k`: choose_k of the episodes' last example
    indices; `at_k`: the headline over the episodes reaching k, examples
    1..k only. `steerability` passes `k`, `at_k_outputs` and
    `at_k_episodes` chosen independently of the model (see there).
  """
  later = [o for o in outputs if o["example_index"] >= 1]
  conf = [o["confidence"] for o in later]
  correct = [o["first_acc"] for o in later]
  by_index = collections.defaultdict(list)
  last: dict[Any, int] = {}
  for o in outputs:
    by_index[o["example_index"]].append(o)
    last[o["episode"]] = max(last.get(o["episode"], -1), o["example_index"])
  indices = sorted(by_index)
  curve: dict[str, list] = {"example_index": indices}
  for key in ("loss", "all_acc", "first_acc"):
    curve[key] = [_mean(o[key] for o in by_index[i]) for i in indices]
  curve["count"] = [len(by_index[i]) for i in indices]
  # Truncation keeps whole examples, so an episode's last loss span is its
  # last complete example.
  if k is None:
    k = metrics_lib.choose_k(list(last.values()))
  if at_k_outputs is None:
    kept = {e for e, m in last.items() if k and m >= k}
    at_k = [o for o in later if o["episode"] in kept and o["example_index"] <= k]
    at_k_episodes = len(kept)
  else:
    at_k = [o for o in at_k_outputs if 1 <= o["example_index"] <= k]
  return {
      **_summary(later),
      "ece": metrics_lib.expected_calibration_error(conf, correct, bins),
      "calibration": metrics_lib.calibration_bins(conf, correct, bins),
      "curve": curve,
      "k": k,
      "at_k": {**_summary(at_k), "num_episodes": at_k_episodes},
  }


def cut_after_example(messages: Sequence[Message], k: int) -> list[Message]:
  """The episode up to and including its example `k` (0-based output count)."""
  out, seen = [], -1
  for m in messages:
    out.append(m)
    if m.role == "output":
      seen += 1
      if seen == k:
        break
  return out


def _at_k(bundle: ModelBundle, episodes, outputs: list[dict], reference,
          max_tokens: int, batch: int, desc: str, progress: bool):
  """SPEC §7a's k and the outputs of the episodes that reach it, cut after k.

  k maximises k · #{episodes with ≥ k complete examples}, counting whole
  examples within `max_tokens` with the `reference` tokenizer and the colon
  format, so every model is scored on the same episodes and examples. An
  episode's outputs 1..k are taken from `outputs` when this model's own
  pass reached example k (a causal model scores a prefix the same either
  way); otherwise the episode cut after example k is scored uncapped.

  Returns:
    `(k, at_k outputs, number of kept episodes)`.
  """
  last = {index: tokenize_episode(messages, "colon", reference, max_tokens=max_tokens,
                                  check_joint=False).num_examples - 1
          for index, messages in episodes}
  k = metrics_lib.choose_k([v for v in last.values() if v >= 0])
  kept = {index for index, v in last.items() if k and v >= k}
  reached = {o["episode"] for o in outputs if o["example_index"] == k}
  at_k = [o for o in outputs if o["episode"] in kept & reached]
  missing = [(index, cut_after_example(messages, k)) for index, messages in episodes
             if index in kept - reached]
  if missing:
    extra, _ = _score_outputs(bundle, missing, None, batch, f"{desc} (cut at k)", progress)
    at_k.extend(extra)
  return k, at_k, len(kept)


def default_icl_tasks(suite: Suite) -> list[str]:
  """Test-suite ICL tasks other than capability sets; without any (e.g. a
  synthetic-only suite), the train-suite ICL tasks' held-out instances."""
  tasks = [t for t in suite.task_names("test", "icl")
           if t not in CAPABILITY_TASKS]
  return tasks or [t for t in suite.task_names("train", "icl")
                   if sum(suite.source(t, "test").num_rows)]


def steerability(bundle: ModelBundle, suite: Suite,
                 tasks: Sequence[str] | None = None, *,
                 num_episodes: int | None = 100, max_tokens: int = 1024,
                 batch: int = 32, seed: int = 0, bins: int = 10,
                 progress: bool = True) -> dict[str, Any]:
  """SPEC §7a on each task's test split (see `steerability_metrics`).

  Args:
    tasks: ICL task names (default: `default_icl_tasks`).
    num_episodes: episodes per task (None: all).
    max_tokens: episode length cap; episodes are cut at example boundaries.
    batch: episodes per `score_episodes` call.
  """
  tasks = list(tasks) if tasks is not None else default_icl_tasks(suite)
  result: dict[str, Any] = {"template": bundle.template, "tasks": {}}
  # k is chosen from the suite's own tokenizer and the plain colon format,
  # the same for every model and template compared (SPEC §7a).
  reference = (load_tokenizer(suite.tokenizer_path) if suite.tokenizer_path
               else bundle.tokenizer)
  pooled = []
  for task in tasks:
    episodes = task_episodes(suite, task, num_episodes, seed)
    desc = f"{bundle.name} {task}"
    outputs, counts = _score_outputs(bundle, episodes, max_tokens, batch, desc,
                                     progress)
    k, at_k, kept = _at_k(bundle, episodes, outputs, reference, max_tokens,
                          batch, desc, progress)
    result["tasks"][task] = {
        **steerability_metrics(outputs, bins, k=k, at_k_outputs=at_k,
                               at_k_episodes=kept), **counts,
        "suite_split": suite.tasks[task]["suite_split"]}
    pooled.extend(o for o in outputs if o["example_index"] >= 1)
  conf = [o["confidence"] for o in pooled]
  correct = [o["first_acc"] for o in pooled]
  per_task = result["tasks"].values()
  result["summary"] = {
      key: _mean(t[key] for t in per_task)
      for key in ("loss", "all_acc", "first_acc", "ece")}
  result["summary"]["calibration"] = metrics_lib.calibration_bins(
      conf, correct, bins)
  result["summary"]["pooled_ece"] = metrics_lib.expected_calibration_error(
      conf, correct, bins)
  return result


# --------------------------------------------------------------------------
# §7b distributional alignment


def is_ordinal(options: Sequence[str]) -> bool:
  """Options that are increasing numbers (a rating scale)."""
  if len(options) < 2 or not all(_NUMBER.fullmatch(o.strip())
                                 for o in options):
    return False
  values = [float(o) for o in options]
  return all(a < b for a, b in zip(values, values[1:]))


def question_messages(record) -> list[dict[str, str]]:
  """Description (if any) then the question as the input message."""
  messages = []
  if record.descriptions:
    messages.append({"role": "description", "content": record.descriptions[0]})
  if record.question:
    messages.append({"role": "input", "content": record.question})
  if not messages:
    raise ValueError(f"distributional instance {record.id!r} has neither a "
                     "description nor a question; rebuild its task.")
  return messages


def distributional_request(request_id: str, record, template: str):
  """The scoring request of one distributional question.

  With the colon template the release names the output after the task
  (SOURCES §6): `\n\nOutput` becomes `\nOutput`, then every `Output` becomes
  the record's `output_name` (e.g. `Response (letter)`), options after a space.
  """
  messages = question_messages(record)
  output_name = (record.extra or {}).get("output_name")
  if template != "colon" or not output_name:
    return _request(id=request_id, options=list(record.options), messages=messages,
                    template=template, target=list(record.target))
  colon = templates_lib.get_template("colon")
  prompt = "".join(text for text, _ in format_episode(
      messages, "colon", add_generation_prompt=True))
  prompt = prompt.replace("\n\nOutput", "\nOutput").replace("Output", output_name)
  return _request(id=request_id, prompt=prompt, target=list(record.target),
                  options=[colon.content_prefix + o for o in record.options])


def distributional(bundle: ModelBundle, suite: Suite,
                   tasks: Sequence[str] | None = None, *,
                   num_questions: int | None = 1000, num_examples: int = 4,
                   seed: int = 0, progress: bool = True) -> dict[str, Any]:
  """SPEC §7b: each option scored as a continuation of the prompt.

  The prompt is the description and question formatted with the model's
  template plus the generation prompt; the scorer formats it (and puts the
  colon template's space before each option). Metrics are per question,
  then means per task; `examples` keeps `num_examples` seeded questions'
  target and model distributions for plots.
  """
  tasks = list(tasks) if tasks is not None else suite.task_names(
      None, "distributional")
  result: dict[str, Any] = {"template": bundle.template, "tasks": {}}
  for task in tasks:
    source = suite.source(task, "test")
    records = task_records(source, _sample_indices(len(source), num_questions,
                                               seed))
    requests = [distributional_request(f"{task}/{r.id}", r, bundle.template)
                for r in records]
    shown = set(_sample_indices(len(records), num_examples, seed + 1))
    per_question, examples = [], []
    mismatched = truncated = 0
    scored = bundle.scorer.score(requests)
    for i, (rec, res) in enumerate(_bar(zip(records, scored, strict=True),
                                        f"{bundle.name} {task}",
                                        len(records), progress)):
      m = metrics_lib.distributional_metrics(rec.target, res.logprobs,
                                             ordinal=is_ordinal(rec.options))
      per_question.append(m)
      mismatched += any(res.boundary_mismatch)
      truncated += bool(res.truncated)
      if i in shown:
        probs = np.exp(np.asarray(res.logprobs, np.float64))
        total = probs.sum()
        examples.append({
            "id": rec.id, "question": rec.question,
            "options": list(rec.options), "target": list(rec.target),
            "model": (probs / total).tolist() if total > 0 else None,
            "js_divergence": m["js_divergence"]})
    names = sorted({k for m in per_question for k in m})
    result["tasks"][task] = {
        "num_questions": len(per_question),
        "metrics": {k: _mean(m.get(k) for m in per_question) for k in names},
        "boundary_mismatch": mismatched,
        "truncated": truncated,
        "examples": examples,
    }
  result["summary"] = {
      k: _mean(t["metrics"].get(k) for t in result["tasks"].values())
      for k in ("js_divergence", "kl_divergence", "total_variation",
                "mode_match", "coverage")}
  return result


# --------------------------------------------------------------------------
# §7c valid output coverage


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
  """SOURCES §7 post-processing: drop pad/end markers, strip, cut at the
  first newline or terminal token, strip again."""
  for junk in _REMOVED:
    text = text.replace(junk, "")
  text = text.strip()
  cuts = [text.find(s) for s in ("\n",) + SAMPLING_STOPS if s in text]
  return text[:min(cuts)].strip() if cuts else text


def diversity(bundle: ModelBundle, suite: Suite,
              tasks: Sequence[str] | None = None, *, num_samples: int = 100,
              variants: Sequence[str] = DIVERSITY_VARIANTS, seed: int = 0,
              num_shown: int = 8, progress: bool = True) -> dict[str, Any]:
  """SPEC §7c: `num_samples` generations per (task, variant) at temperature
  1 (no top-p/top-k), cleaned, checked, and measured.

  Args:
    tasks: generation task keys (instance ids of the suite's diversity
      task); default all 22.
    num_shown: most common generations kept per (task, variant) for tables.
  """
  if bundle.sampler is None:
    raise ValueError(f"model {bundle.name!r} has no sampler; the diversity "
                     "suite samples generations.")
  records = [r for name in suite.task_names(None, "diversity")
             for r in task_records(suite.source(name, "test"))]
  if tasks is not None:
    unknown = sorted(set(tasks) - {r.id for r in records})
    if unknown:
      raise ValueError(f"unknown diversity task(s) {unknown}; the suite has "
                       f"{sorted(r.id for r in records)}.")
    records = [r for r in records if r.id in set(tasks)]
  template = templates_lib.get_template(bundle.template)
  eos = bundle.tokenizer.eos_id
  result: dict[str, Any] = {"template": bundle.template, "tasks": {},
                            "num_samples": num_samples}
  for rec in _bar(records, f"{bundle.name} diversity", len(records), progress):
    check = validity.check_for_record(rec)
    prompts = ["".join(text for text, _ in format_episode(
        diversity_messages(rec, v), template, add_generation_prompt=True))
               for v in variants]
    samples = bundle.sampler.sample(
        prompts, num_samples=num_samples,
        max_new_tokens=int(rec.extra["max_new_tokens"]), temperature=1.0,
        top_p=1.0, top_k=0, stop_strings=SAMPLING_STOPS,
        stop_token_ids=() if eos is None else (eos,), seed=seed)
    per_variant = {}
    for variant, raw in zip(variants, samples, strict=True):
      gens = [clean_generation(g) for g in raw]
      shown = collections.Counter(gens).most_common(num_shown)
      per_variant[variant] = {
          **metrics_lib.diversity_metrics(gens, check),
          "top": [{"text": g, "count": c, "valid": bool(check(g))}
                  for g, c in shown]}
    result["tasks"][rec.id] = per_variant
  result["summary"] = {
      v: {k: _mean(t[v][k] for t in result["tasks"].values())
          for k in ("percent_valid", "yield", "unique_gens_pct",
                    "usable_unique", "raw_unique", "pairwise_collision",
                    "coverage")}
      for v in variants}
  return result


# --------------------------------------------------------------------------
# §7d capabilities


def _label_value(label: str) -> int:
  return int(label) if label.isdigit() else ord(label) - ord("A") + 1


def option_labels(question: str) -> list[str]:
  """The answer labels of a question: in its last run of option lines, the
  last sequence of at least two counting up from A or 1 (`A. …`, `B. …` or
  `1. …`, `2. …`).

  Earlier labelled lines (an MMLU statement list `I. …`, a numbered list
  before the options) are not options.
  """
  runs, run = [], []
  for line in question.splitlines():
    m = _OPTION_LINE.match(line)
    if m:
      run.append(m.group(1))
    elif run:
      runs.append(run)
      run = []
  if run:
    runs.append(run)
  for run in reversed(runs):
    for start in range(len(run) - 1, -1, -1):
      if run[start] not in ("A", "1"):
        continue
      labels = [run[start]]
      for label in run[start + 1:]:
        prev = labels[-1]
        if label.isdigit() != prev.isdigit() or _label_value(label) != _label_value(prev) + 1:
          break
        labels.append(label)
      if len(labels) >= 2:
        return labels
  return []


def capability_questions(messages: Sequence[Message], num_examples: int
                         ) -> list[tuple[list[Message], list[str], str]]:
  """(prompt messages, option labels, answer) of the first `num_examples`
  examples: each prompt is everything before that example's output."""
  out = []
  for pos, m in enumerate(messages):
    if m.role != "output":
      continue
    if len(out) == num_examples:
      break
    question = messages[pos - 1].content if pos and \
        messages[pos - 1].role == "input" else ""
    out.append((list(messages[:pos]), option_labels(question), m.content))
  return out


def capabilities(bundle: ModelBundle, suite: Suite,
                 tasks: Sequence[str] | None = None, *,
                 num_episodes: int | None = 50, max_tokens: int = 1024,
                 batch: int = 32, seed: int = 0, progress: bool = True
                 ) -> dict[str, Any]:
  """SPEC §7d: accuracy of the capability sets as ICL episodes.

  Multiple-choice questions (labelled `A. …` lines) score each label as a
  continuation of the episode so far and pick the most likely; the others
  (DROP's free-text answers) count a greedy exact match of the answer
  (`all_acc`). `accuracy` is over questions with example index ≥ 1, like
  §7a; `accuracy_all` includes the first.
  """
  tasks = list(tasks) if tasks is not None else [
      t for t in CAPABILITY_TASKS if t in suite.tasks]
  result: dict[str, Any] = {"template": bundle.template, "tasks": {}}
  for task in tasks:
    episodes = task_episodes(suite, task, num_episodes, seed)
    desc = f"{bundle.name} {task}"
    questions = []  # (id, example index, labels, answer, prompt messages)
    for index, messages in episodes:
      kept = tokenize_episode(messages, bundle.template, bundle.tokenizer,
                              max_tokens=max_tokens,
                              check_joint=False).num_examples
      for j, (prompt, labels, answer) in enumerate(
          capability_questions(messages, kept)):
        questions.append((f"{task}/{index}/{j}", j, labels, answer, prompt))
    # Multiple choice: the answer is one of the question's labels. A task
    # with any such question is scored that way; its other questions are
    # counted as `unparsed`, never silently scored another way.
    choice = [q for q in questions if len(q[2]) >= 2 and q[3] in q[2]]
    unparsed = len(questions) - len(choice)
    if choice:
      requests = [_request(id=qid, options=labels, messages=_as_dicts(prompt),
                           template=bundle.template)
                  for qid, _, labels, _, prompt in choice]
      correct = []
      for q, res in _bar(zip(choice, bundle.scorer.score(requests),
                             strict=True), desc, len(choice), progress):
        correct.append((q[1], float(int(np.argmax(res.logprobs))
                                    == q[2].index(q[3]))))
      mode = "option_loglik"
    else:
      outputs, _ = _score_outputs(bundle, episodes, max_tokens, batch,
                                     desc, progress)
      correct = [(o["example_index"], o["all_acc"]) for o in outputs]
      mode, unparsed = "greedy_exact_match", 0
    result["tasks"][task] = {
        "mode": mode,
        "accuracy": _mean(c for j, c in correct if j >= 1),
        "accuracy_all": _mean(c for _, c in correct),
        "num_questions": len(correct),
        "unparsed": unparsed,
    }
  result["summary"] = {"accuracy": _mean(
      t["accuracy"] for t in result["tasks"].values())}
  return result


SUITES: dict[str, Callable[..., dict[str, Any]]] = {
    "steerability": steerability,
    "distributional": distributional,
    "diversity": diversity,
    "capabilities": capabilities,
}
