"""Diffuse distributions (Zhang et al., 2024): "pick one at random" prompts.

Raw files: the JSON prompt files of github y0mingzhang/diffuse-distributions
under `diffuse/prompts/<group>/<name>.json`, each an object with `request`
(the prompt) and `targets` (the valid answers, each wrapped in braces, e.g.
"{Monday}"). PROMPTS lists the 27 files with targets; the release walks the
whole prompts/ tree and skips files with none (prompts/ficticious-people/
ficticious-people.json is the only such file at the pinned commit).

One train task (docs/method.md#diffuse-distributions): diffuse_distribution, one
instance per prompt file, whose rows are its targets (outputs only); an
episode is all targets in random order, emitted in 10 orderings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

REPO = "y0mingzhang/diffuse-distributions"
COMMIT = "7170ab056d790fb3f209a3f5cca2dffe59266996"
PROMPTS = (
    "baby-names/train.json",
    "continent-countries/africa.json",
    "continent-countries/asia.json",
    "continent-countries/europe.json",
    "continent-countries/north-america.json",
    "continent-countries/oceania.json",
    "continent-countries/south-america.json",
    "day-date/day-0.json",
    "day-date/day-1.json",
    "day-date/december-0.json",
    "day-date/december-1.json",
    "day-date/june-0.json",
    "day-date/june-1.json",
    "ficticious-people/ficticious-people-train.json",
    "fruits/fruit-0.json",
    "fruits/fruit-1.json",
    "numbers/even-0.json",
    "numbers/even-1.json",
    "numbers/odd-0.json",
    "numbers/odd-1.json",
    "numbers/prime-0.json",
    "numbers/prime-1.json",
    "numbers/rng-0.json",
    "numbers/rng-1.json",
    "occupations/occupations-0.json",
    "occupations/occupations-1.json",
    "occupations/occupations-2.json",
)
ORDERINGS = 10  # the release's permutations_per_iter


def _raw(name: str) -> RawFile:
  url = f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/prompts/{name}"
  return RawFile(path=f"diffuse/prompts/{name}", published_at=url,
                 download=Download(target=f"diffuse/prompts/{name}", url=url))


PROMPT_FILES = tuple(_raw(name) for name in PROMPTS)


def clean_target(target: str) -> str:
  """A target without its braces (and zero-width spaces), stripped.

  Deliberate difference (docs/method.md#diffuse-distributions): the release
  also deletes newlines, which glues the lines of a multi-field target
  together ("{Fatema Rahman}\\n{Female}" -> "Fatema RahmanFemale"); we keep
  them, stripped per line, so each field stays on its own line.
  """
  text = target.replace("{", "").replace("}", "").replace("\u200b", "")
  return "\n".join(line.strip() for line in text.strip().split("\n")
                   if line.strip())


def description(request: str) -> str:
  """The release's description: the request up to its first period."""
  return request.split(".")[0] + ", without replacement."


def generate(ctx: BuildContext) -> Iterator[Instance]:
  paths = _common.raw_paths("diffuse_distribution", ctx, PROMPT_FILES)
  for name, path in zip(PROMPTS, paths):
    try:
      with open(path, encoding="utf-8") as f:
        data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise ValueError(f"{path}: not a JSON file: {e}") from e
    if not isinstance(data, dict):
      raise ValueError(f"{path}: expected a JSON object with `request` and "
                       f"`targets`, got {type(data).__name__}.")
    targets = data.get("targets")
    if not targets:
      continue  # the release skips prompts without targets
    request = data.get("request")
    if not isinstance(request, str):
      raise _common.bad_value(path, "the object", "request",
                              f"expected a string, got {request!r:.80}")
    if not isinstance(targets, list):
      raise _common.bad_value(path, "the object", "targets",
                              f"expected a list, got {targets!r:.80}")
    rows = []
    for i, target in enumerate(targets):
      if not isinstance(target, str):
        raise _common.bad_value(path, f"targets[{i}]", "targets",
                                f"expected a string, got {target!r:.80}")
      text = clean_target(target)
      if text:  # targets that are empty once cleaned are dropped
        rows.append(Row(output=text))
    if rows:
      yield Instance(id=name.removesuffix(".json"), rows=rows,
                     descriptions=[description(request)])


TASKS = [
    TaskSpec(name="diffuse_distribution", suite_split="train", kind="icl",
             generate=generate, orderings=ORDERINGS, raw_files=PROMPT_FILES,
             about="Diffuse distributions: every valid answer to a 'pick one "
             "at random' prompt, in random order."),
]
