"""AmbiEnt (Liu et al., 2023): ambiguity in natural language inference.

Raw files, JSON lines from github alisawuffles/ambient (pinned at COMMIT):
  ambient/AmbiEnt/ambient_full.jsonl: one ambiguous pair per line: `premise`,
    `hypothesis`, `premise_ambiguous` / `hypothesis_ambiguous` (JSON
    booleans), `disambiguations` (a list of {premise, hypothesis, label}).
  ambient/AmbiEnt/linguist_annotations.jsonl: `premise`, `hypothesis`,
    `worker_ids` and `annotations` (parallel lists: one linguist's label, e.g.
    "entailment|neutral", per worker id).
  ambient/AmbiEnt/analysis/crowdworker_annotations.jsonl: `premise`,
    `hypothesis`, `ambiguous_sent` ("premise"/"hypothesis"),
    `interpretations` and `labels` (parallel lists; a label may be null), and
    `q0_gold` .. `q3_gold` (lists of crowdworker labels, nulls allowed).

Six train tasks (docs/method.md#ambient): pair generation, ambiguity flags,
disambiguation rewrites, per-linguist labels, interpretation -> label, and the
crowdworkers' label distribution per pair.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

REPO = "alisawuffles/ambient"
# The last commit touching any of the three files (all three are final there).
COMMIT = "d8d2dcdb566db50878d41304bd769f055f823056"
NLI_LABELS = ("entailment", "neutral", "contradiction")
GOLD_COLUMNS = ("q0_gold", "q1_gold", "q2_gold", "q3_gold")


def _raw(path: str, sha256: str, size: int) -> RawFile:
  return RawFile(
      path=f"ambient/{path}",
      published_at=f"https://github.com/{REPO}/blob/{COMMIT}/{path}",
      download=Download(
          target=f"ambient/{path}",
          url=f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/{path}",
          sha256=sha256, size=size))


FULL = _raw("AmbiEnt/ambient_full.jsonl",
            "f7eb1644d1d59be3bb498eb5c861f7a2664439e348c436f04b7c942d9d3cee50",
            653944)
LINGUISTS = _raw(
    "AmbiEnt/linguist_annotations.jsonl",
    "c2b794e3755bde82656a755e9464c71925b827895dc5b62eae6766f340d306dd",
    929007)
CROWD = _raw(
    "AmbiEnt/analysis/crowdworker_annotations.jsonl",
    "55b994228a59c026835473e053abe97726a08a1dcd6db08605a6e1493638bbc2",
    602116)

# The release's description strings (data: copied exactly, typos included).
PAIR_DESCRIPTIONS = (
    "Generate ambiguous premise and hypothesis pairs for natural language "
    "inference tasks. These pairs contain linguistic ambiguities that can "
    "lead to multiple valid interpretations.",
    "Create premise-hypothesis pairs where the premise contains ambiguity "
    "that affects the entailment relationship with the hypothesis.",
    "Generate: premise (ambiguous statement), hypothesis (statement to "
    "evaluate against premise). Natural language inference with ambiguity.",
)
DETECTION_DESCRIPTIONS = (
    "Given a premise and hypothesis pair, determine whether the premise is "
    "ambiguous and whether the hypothesis is ambiguous. Answer with 'True' or "
    "'False' for each.",
    "Analyze premise-hypothesis pairs to detect linguistic ambiguity in "
    "either statement.",
    "Given: premise, hypothesis. Generate: premise_ambiguous_str "
    "(True/False), hypothesis_ambiguous_str (True/False). Ambiguity detection "
    "task.",
)
DISAMBIGUATION_DESCRIPTIONS = (
    "Given an ambiguous premise-hypothesis pair and a target entailment "
    "label, rewrite the premise and/or hypothesis to remove ambiguity and "
    "achieve the target label.",
    "Disambiguate premise-hypothesis pairs by rewriting them to clearly "
    "express a specific entailment relationship (entailment, neutral, or "
    "contradiction).",
    "Given: original_premise (ambiguous), original_hypothesis, target_label "
    "(entailment/neutral/contradiction). Generate: disambiguated_premise, "
    "disambiguated_hypothesis (unambiguous versions).",
)
LINGUIST_DESCRIPTIONS = (
    "Given a premise-hypothesis pair, predict the entailment annotation that "
    "this specific linguist would provide (entailment, neutral, "
    "contradiction, or combinations like 'entailment|neutral').",
    "Predict individual linguist annotations for natural language inference "
    "tasks based on premise-hypothesis pairs.",
    "Given: premise, hypothesis. Generate: annotation (entailment judgment by "
    "this individual linguist).",
)
INTERPRETATION_DESCRIPTIONS = (
    "Given a premise-hypothesis pair with an ambiguous sentence and a "
    "specific interpretation of that ambiguity, predict the entailment label "
    "(entailment, neutral, or contradiction).",
    "Predict entailment labels based on specific interpretations of "
    "ambiguous premise-hypothesis pairs.",
    "Given: premise, hypothesis, ambiguous_sent (which sentence is "
    "ambiguous), interpretation (specific meaning). Generate: "
    "entailment_label (entailment/neutral/contradiction).",
)
DISTRIBUTION_DESCRIPTIONS = (
    "Given an ambiguous premise-hypothesis pair, predict the distribution of "
    "entailment labels that human annotators would provide. Format as counts "
    "and proportions for each label type.",
    "Predict how human annotators would distribute their judgments across "
    "entailment, neutral, and contradiction labels for ambiguous "
    "premise-hypothesis pairs.",
    "Given: premise, hypothesis, ambiguous_sent (which is ambiguous). "
    "Generate: label_distribution (annotator consensus patterns).",
)




class _Line:
  """Typed access to one JSON-lines record; a bad field names file, line, key."""

  def __init__(self, path: str, line: int, obj: dict[str, Any]):
    self.path, self.line, self.obj = path, line, obj

  def error(self, key: str, message: str) -> ValueError:
    return _common.bad_value(self.path, f"line {self.line}", key, message)

  def get(self, key: str, kinds: type | tuple[type, ...],
          what: str) -> Any:
    if key not in self.obj:
      raise self.error(key, "missing")
    value = self.obj[key]
    # bool is an int subclass; a flag must be a JSON boolean and a count not.
    if not isinstance(value, kinds) or (isinstance(value, bool)
                                        and bool not in _as_tuple(kinds)):
      raise self.error(key, f"expected {what}, got {value!r:.80}")
    return value

  def text(self, key: str) -> str:
    return self.get(key, str, "a string")

  def strings(self, key: str, nullable: bool = False) -> list[str | None]:
    values = self.get(key, list, "a list")
    for v in values:
      if not (isinstance(v, str) or (nullable and v is None)):
        raise self.error(key, f"expected a list of strings"
                         f"{' or nulls' if nullable else ''}, got "
                         f"{values!r:.80}")
    return values


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
  return kinds if isinstance(kinds, tuple) else (kinds,)


def _records(task: str, ctx: BuildContext,
             raw: RawFile) -> Iterator[_Line]:
  (path,) = _common.raw_paths(task, ctx, (raw,))
  for line, obj in _common.read_jsonl(path):
    yield _Line(path, line, obj)


def generate_premise_hypothesis(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every ambiguous pair, as JSON {premise, hypothesis}."""
  rows = [Row(output=serialise_fields({"premise": r.text("premise"),
                                       "hypothesis": r.text("hypothesis")}))
          for r in _records("ambient_premise_hypothesis", ctx, FULL)]
  yield Instance(id="all", rows=rows)


def generate_ambiguity_detection(ctx: BuildContext) -> Iterator[Instance]:
  """Pair -> JSON booleans {premise_ambiguous, hypothesis_ambiguous}."""
  rows = []
  for r in _records("ambient_ambiguity_detection", ctx, FULL):
    given = serialise_fields({"premise": r.text("premise"),
                              "hypothesis": r.text("hypothesis")})
    # JSON booleans (true/false), as the release's json.dumps writes them.
    flags = {k: r.get(k, bool, "true or false")
             for k in ("premise_ambiguous", "hypothesis_ambiguous")}
    rows.append(Row(input=given, output=serialise_fields(flags)))
  yield Instance(id="all", rows=rows)


def generate_disambiguation(ctx: BuildContext) -> Iterator[Instance]:
  """(pair, target label) -> the rewritten, unambiguous pair."""
  rows = []
  for r in _records("ambient_disambiguation", ctx, FULL):
    premise, hypothesis = r.text("premise"), r.text("hypothesis")
    for d in r.get("disambiguations", list, "a list"):
      if not (isinstance(d, dict) and all(
          isinstance(d.get(k), str) for k in ("premise", "hypothesis",
                                              "label"))):
        raise r.error("disambiguations",
                      "expected objects with string premise, hypothesis and "
                      f"label, got {d!r:.80}")
      given = serialise_fields({"original_premise": premise,
                                "original_hypothesis": hypothesis,
                                "target_label": d["label"]})
      rows.append(Row(input=given, output=serialise_fields(
          {"disambiguated_premise": d["premise"],
           "disambiguated_hypothesis": d["hypothesis"]})))
  yield Instance(id="all", rows=rows)


def generate_linguist_annotations(ctx: BuildContext) -> Iterator[Instance]:
  """One instance per linguist (order of first appearance): pair -> label."""
  linguists: dict[str, list[Row]] = {}
  for r in _records("ambient_linguist_annotations", ctx, LINGUISTS):
    given = serialise_fields({"premise": r.text("premise"),
                              "hypothesis": r.text("hypothesis")})
    workers, labels = r.strings("worker_ids"), r.strings("annotations")
    if len(workers) != len(labels):
      # The release zips them and silently drops the surplus; a length
      # mismatch means the pairing is unknown, so we stop instead
      # (docs/method.md#ambient-rows).
      raise r.error("annotations", f"{len(labels)} annotations for "
                    f"{len(workers)} worker_ids")
    for worker, label in zip(workers, labels):
      linguists.setdefault(worker, []).append(Row(input=given, output=label))
  for worker, rows in linguists.items():
    yield Instance(id=worker, rows=rows)


def generate_interpretation_labels(ctx: BuildContext) -> Iterator[Instance]:
  """(pair, ambiguous sentence, one interpretation) -> its NLI label."""
  rows = []
  for r in _records("ambient_interpretation_labels", ctx, CROWD):
    base = {"premise": r.text("premise"), "hypothesis": r.text("hypothesis"),
            "ambiguous_sent": r.text("ambiguous_sent")}
    interpretations = r.strings("interpretations")
    labels = r.strings("labels", nullable=True)
    if len(interpretations) != len(labels):
      raise r.error("labels", f"{len(labels)} labels for "
                    f"{len(interpretations)} interpretations")
    for interpretation, label in zip(interpretations, labels):
      if label is None:  # a distractor interpretation: no label, skipped
        continue
      rows.append(Row(input=serialise_fields(
          {**base, "interpretation": interpretation}), output=label))
  yield Instance(id="all", rows=rows)


def _percent(count: int, total: int) -> float:
  # numpy.round(x, 4) as the release calls it: scale, round half to even,
  # unscale (Python's round of a float is half-even too), so the printed
  # floats match the release's (e.g. 33.3333, 66.6667).
  return round(count / total * 100 * 10**4) / 10**4


def generate_annotation_distributions(ctx: BuildContext) -> Iterator[Instance]:
  """(pair, ambiguous sentence) -> crowdworkers' label counts and shares.

  The output is the Python repr of a dict, as the release str()s it:
  {'entailment_fraction': '4/9', 'entailment_percentage': 44.4444, ...}.
  """
  rows = []
  for r in _records("ambient_annotation_distributions", ctx, CROWD):
    given = serialise_fields({"premise": r.text("premise"),
                              "hypothesis": r.text("hypothesis"),
                              "ambiguous_sent": r.text("ambiguous_sent")})
    votes = []
    for column in GOLD_COLUMNS:
      for label in r.strings(column, nullable=True):
        if label is None:
          continue
        if label not in NLI_LABELS:
          raise r.error(column, f"unknown label {label!r}; expected one of "
                        f"{list(NLI_LABELS)}")
        votes.append(label)
    if not votes:  # the release skips pairs nobody labelled
      continue
    total = len(votes)
    distribution: dict[str, Any] = {}
    for label in NLI_LABELS:
      count = votes.count(label)
      distribution[f"{label}_fraction"] = f"{count}/{total}"
      distribution[f"{label}_percentage"] = _percent(count, total)
    rows.append(Row(input=given, output=str(distribution)))
  yield Instance(id="all", rows=rows)


def _task(name: str, generate, raw: RawFile, descriptions: tuple[str, ...],
          about: str, episodes: int = 50) -> TaskSpec:
  # Release: n_per=50 (2 for the linguists: only 28 of them), GP(64) rows.
  return TaskSpec(name=name, suite_split="train", kind="icl",
                  generate=generate, mean_k=64, episodes_per_instance=episodes,
                  default_descriptions=descriptions, raw_files=(raw,),
                  about=about)


TASKS = [
    _task("ambient_premise_hypothesis", generate_premise_hypothesis, FULL,
          PAIR_DESCRIPTIONS,
          "AmbiEnt: generate ambiguous NLI premise/hypothesis pairs."),
    _task("ambient_ambiguity_detection", generate_ambiguity_detection, FULL,
          DETECTION_DESCRIPTIONS,
          "AmbiEnt: is the premise / the hypothesis ambiguous (JSON flags)."),
    _task("ambient_disambiguation", generate_disambiguation, FULL,
          DISAMBIGUATION_DESCRIPTIONS,
          "AmbiEnt: rewrite an ambiguous pair to carry a target NLI label."),
    _task("ambient_linguist_annotations", generate_linguist_annotations,
          LINGUISTS, LINGUIST_DESCRIPTIONS,
          "AmbiEnt: one linguist's NLI label(s) per pair.", episodes=2),
    _task("ambient_interpretation_labels", generate_interpretation_labels,
          CROWD, INTERPRETATION_DESCRIPTIONS,
          "AmbiEnt: NLI label of a pair under one interpretation."),
    _task("ambient_annotation_distributions",
          generate_annotation_distributions, CROWD, DISTRIBUTION_DESCRIPTIONS,
          "AmbiEnt: crowdworkers' NLI label distribution for a pair."),
]
