"""Users' own tasks: a directory of JSON Lines files.

Every `NAME.jsonl` directly in the directory is one task called `NAME`
(letters, digits, `_` and `-`). Each non-blank line is one JSON object. A file
uses one of two layouts, chosen by its first data line:

*Row per line*: the whole file is one instance (one distribution to infer):

    {"input": "Capital of France?", "output": "Paris"}
    {"input": "Capital of Peru?", "output": "Lima"}

*Instance per line*: each line is one instance with its own rows, e.g. one
person's ratings:

    {"id": "alice", "description": "Alice's film ratings.", "rows": [{"input": "Up", "output": "5"}, {"input": "Heat", "output": "3"}]}

  - `rows` (required, non-empty): the instance's examples.
  - `id` (optional): a unique string; default: the instance's position (0, 1,
    ...).
  - `description` (optional): a string or a list of alternative strings that
    describe this instance; they replace the task's descriptions for it.

Rows: `output` is required and `input` optional, but within an instance
either every row has an input or none has. A value is a string; a number,
boolean or list (written as JSON: `3` -> `3`, `true` -> `true`); or an
object of named fields, e.g. `{"title": "Up", "year": 2009}`: one field
becomes its value as text, several become the object as JSON in the order
written (docs/method.md#data-model).

Task settings go either on the file's first line as `{"meta": {...}}` or in a
sidecar file `NAME.meta.json` holding the `{...}` object (not both). All keys
are optional:

  - `split`: `"train"` (default) or `"test"`: which half of the suite.
  - `mean_k`: mean number of examples per episode (at least 2; k is drawn as
    Geometric(2/mean_k) + Poisson(mean_k/2)).
  - `fixed_k`: exactly this many examples per episode (not with `mean_k`).
    With neither, an episode uses all rows of an instance, cut to fit the
    token budget.
  - `episodes_per_instance`: episodes drawn from each instance, each an
    independent random set of k rows (the release's `n_per=k`). Without it,
    every row of an instance is used exactly once per pass: the rows are
    shuffled and cut into consecutive chunks of k (the release's `n_per=-1`).
  - `orderings`: show each set of rows this many times, in different orders
    (default 1).
  - `max_episodes`: at most this many episodes per split (default: no cap).
  - `p_desc`: probability that an episode starts with a description
    (default 0.6).
  - `descriptions`: a string or list of strings describing the task, used
    for instances without a description of their own.
  - `about`: one line shown by `--list`.

Example sidecar `capitals.meta.json`:

    {"split": "test", "fixed_k": 10, "descriptions": ["Capital cities."]}
"""

from __future__ import annotations

import codecs
import json
import math
import os
import re
from collections.abc import Sequence
from typing import Any

from data_pipelines.schema import (SUITE_SPLITS, Instance, Row, TaskSpec,
                                   serialise_fields)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_META_KEYS = ("split", "mean_k", "fixed_k", "episodes_per_instance",
              "orderings", "max_episodes", "p_desc", "descriptions", "about")
_INSTANCE_KEYS = ("id", "description", "rows")
_ROW_KEYS = ("input", "output")
_ADD_OUTPUT = ('add "output": "<what to predict>" (and "input": "<what is '
               'given>" if anything is)')


def load_user_tasks(directory: str) -> list[TaskSpec]:
  """Reads every `*.jsonl` task in `directory` (format: module docstring).

  Args:
    directory: a folder of `NAME.jsonl` files and optional `NAME.meta.json`.

  Returns:
    One ICL TaskSpec per file, sorted by name; `generate` yields the
    instances read now, so every error surfaces here, before a build.

  Raises:
    FileNotFoundError: `directory` is not a directory.
    ValueError: a file breaks the format; the message names the file, the
      line and what to change.
  """
  if not os.path.isdir(directory):
    raise FileNotFoundError(f"user task directory {directory!r} does not "
                            "exist or is not a directory.")
  names = sorted(os.listdir(directory))
  tasks = [n[:-len(".jsonl")] for n in names if n.endswith(".jsonl")]
  for n in names:
    if n.endswith(".meta.json") and n[:-len(".meta.json")] not in tasks:
      raise ValueError(f"{os.path.join(directory, n)}: settings for a task "
                       f"with no data file; add {n[:-len('.meta.json')]}"
                       ".jsonl or rename the settings file.")
  if not tasks:
    raise ValueError(f"{directory}: no *.jsonl files; each task is one "
                     "NAME.jsonl file with one JSON object a line.")
  return [_load_task(directory, name) for name in tasks]


def _load_task(directory: str, name: str) -> TaskSpec:
  path = os.path.join(directory, name + ".jsonl")
  if not _NAME.fullmatch(name):
    raise ValueError(f"{path}: the task name {name!r} must use only letters, "
                     "digits, '_' and '-' (and not start with '_' or '-'); "
                     "rename the file.")
  meta, meta_where, instances = _read_jsonl(path)
  sidecar = os.path.join(directory, name + ".meta.json")
  if os.path.exists(sidecar):
    if meta is not None:
      raise ValueError(f"{meta_where}: settings are both on this line and in "
                       f"{sidecar}; keep one.")
    meta_where = sidecar
    meta = _read_sidecar(sidecar)
  settings = _settings(meta or {}, meta_where)
  for instance in instances:
    instance.validate(name)
  return TaskSpec(
      name=name, kind="icl", generate=lambda ctx: list(instances),
      suite_split=settings.get("split", "train"),
      mean_k=settings.get("mean_k"), fixed_k=settings.get("fixed_k"),
      episodes_per_instance=settings.get("episodes_per_instance", 1),
      chunk_all_rows="episodes_per_instance" not in settings,
      orderings=settings.get("orderings", 1),
      max_episodes=settings.get("max_episodes"),
      p_desc=settings.get("p_desc", 0.6),
      default_descriptions=tuple(settings.get("descriptions", ())),
      about=settings.get("about", f"User task from {path}."))


def _read_sidecar(path: str) -> Any:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f"{path}: not valid JSON ({e}).") from e


def _lines(path: str):
  """(line number, parsed object) for each non-blank line."""
  # Lines are decoded one by one so a bad byte is reported on its own line.
  with open(path, "rb") as f:
    for n, raw in enumerate(f, 1):
      if n == 1:
        raw = raw.removeprefix(codecs.BOM_UTF8)  # editors on Windows add one
      try:
        text = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        raise ValueError(f"{path}, line {n}: not UTF-8 text ({e}).") from e
      if not text.strip():
        continue
      try:
        obj = json.loads(text)
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}, line {n}: not valid JSON ({e.msg} at "
                         f"column {e.colno}).") from e
      if not isinstance(obj, dict):
        raise ValueError(f"{path}, line {n}: expected a JSON object "
                         f"{{...}}, got {type(obj).__name__}.")
      yield n, obj


def _read_jsonl(path: str) -> tuple[Any, str | None, list[Instance]]:
  """Parses one task file: (meta or None, where meta was, instances)."""
  meta, meta_where = None, None
  per_line: bool | None = None  # instance per line; None until known
  file_rows: list[tuple[int, Row]] = []
  instances: list[Instance] = []
  ids: dict[str, int] = {}
  for n, obj in _lines(path):
    where = f"{path}, line {n}"
    if set(obj) == {"meta"}:
      if per_line is not None or meta is not None:
        raise ValueError(f"{where}: {{\"meta\": ...}} must be the first line "
                         "of the file.")
      meta, meta_where = obj["meta"], where
      continue
    if per_line is None:
      per_line = "rows" in obj
    if per_line != ("rows" in obj):
      expected = ('an instance {"rows": [...]}' if per_line else
                  'a row {"input": ..., "output": ...}')
      raise ValueError(f"{where}: expected {expected} like the file's first "
                       "line; a file has either one instance or one row per "
                       "line, not both.")
    if not per_line:
      file_rows.append((n, _row(obj, where)))
      continue
    instance = _instance(obj, where, default_id=str(len(instances)))
    if instance.id in ids:
      raise ValueError(f"{where}: id {instance.id!r} is already used on line "
                       f"{ids[instance.id]}; ids must be unique.")
    ids[instance.id] = n
    instances.append(instance)
  if file_rows:
    _check_inputs(path, [(f"line {n}", r) for n, r in file_rows])
    instances = [Instance(id="0", rows=[r for _, r in file_rows])]
  if not instances:
    raise ValueError(f"{path}: the task has no rows with an output; add lines "
                     'like {"input": "...", "output": "..."} (or just '
                     '{"output": "..."} when nothing is given).')
  return meta, meta_where, instances


def _instance(obj: dict[str, Any], where: str, default_id: str) -> Instance:
  unknown = sorted(set(obj) - {*_INSTANCE_KEYS, "descriptions"})
  if unknown:
    raise ValueError(f"{where}: unknown key(s) {unknown}; an instance line "
                     f"has {list(_INSTANCE_KEYS)}.")
  rows = obj["rows"]
  if not isinstance(rows, list) or not rows:
    raise ValueError(f"{where}: \"rows\" must be a non-empty list of "
                     '{"input": ..., "output": ...} objects.')
  parsed = []
  for i, row in enumerate(rows):
    if not isinstance(row, dict):
      raise ValueError(f"{where}, rows[{i}]: expected a JSON object, got "
                       f"{type(row).__name__}.")
    parsed.append((f"rows[{i}]", _row(row, f"{where}, rows[{i}]")))
  _check_inputs(where, parsed)
  iid = obj.get("id", default_id)
  if isinstance(iid, bool) or not isinstance(iid, (str, int)):
    raise ValueError(f"{where}: \"id\" must be a string, got {iid!r}.")
  return Instance(id=str(iid), rows=[r for _, r in parsed],
                  descriptions=_descriptions(obj, where))


def _row(obj: dict[str, Any], where: str) -> Row:
  if obj.get("output") is None:
    found = f" (found keys {sorted(obj)})" if obj else ""
    raise ValueError(f"{where}: the row has no \"output\"{found}; "
                     f"{_ADD_OUTPUT}.")
  unknown = sorted(set(obj) - set(_ROW_KEYS))
  if unknown:
    raise ValueError(f"{where}: unknown key(s) {unknown}; a row has "
                     '"output" and optionally "input" (put several fields '
                     'in an object: {"output": {"a": ..., "b": ...}}).')
  given = obj.get("input")
  return Row(output=_text(obj["output"], where, "output"),
             input=None if given is None else _text(given, where, "input"))


def _text(value: Any, where: str, field: str) -> str:
  """A row value as the string the model sees (docs/method.md#data-model for objects)."""
  if isinstance(value, str):
    return value
  if isinstance(value, dict):
    if not value:
      raise ValueError(f"{where}: \"{field}\" is an empty object; give at "
                       "least one field.")
    return serialise_fields(value)
  return json.dumps(value)


def _check_inputs(where: str, rows: Sequence[tuple[str, Row]]) -> None:
  with_input = [w for w, r in rows if r.input is not None]
  without = [w for w, r in rows if r.input is None]
  if with_input and without:
    raise ValueError(
        f"{where}: some rows have an \"input\" and some do not (with: "
        f"{_some(with_input)}; without: {_some(without)}); give every row an "
        "input or none.")


def _some(wheres: list[str]) -> str:
  shown = ", ".join(wheres[:5])
  return shown + (f" and {len(wheres) - 5} more" if len(wheres) > 5 else "")


def _descriptions(obj: dict[str, Any], where: str) -> list[str]:
  """`description` or `descriptions`: a string or a list of strings."""
  given = [k for k in ("description", "descriptions") if k in obj]
  if len(given) > 1:
    raise ValueError(f"{where}: both \"description\" and \"descriptions\"; "
                     "keep one.")
  if not given:
    return []
  value = obj[given[0]]
  if isinstance(value, str):
    value = [value]
  if (not isinstance(value, list) or not value
      or not all(isinstance(d, str) and d.strip() for d in value)):
    raise ValueError(f"{where}: \"{given[0]}\" must be a non-empty string or "
                     "a list of them.")
  return value


def _settings(meta: Any, where: str | None) -> dict[str, Any]:
  """Checks the task settings; returns only the keys that were given."""
  if not isinstance(meta, dict):
    raise ValueError(f"{where}: the settings must be a JSON object, got "
                     f"{type(meta).__name__}.")
  unknown = sorted(set(meta) - {*_META_KEYS, "description"})
  if unknown:
    raise ValueError(f"{where}: unknown setting(s) {unknown}; allowed: "
                     f"{list(_META_KEYS)}.")
  out: dict[str, Any] = {}
  if "split" in meta:
    if meta["split"] not in SUITE_SPLITS:
      raise ValueError(f"{where}: \"split\" must be one of {SUITE_SPLITS}, "
                       f"got {meta['split']!r}.")
    out["split"] = meta["split"]
  if "mean_k" in meta and "fixed_k" in meta:
    raise ValueError(f"{where}: give \"mean_k\" or \"fixed_k\", not both.")
  if "mean_k" in meta:
    m = meta["mean_k"]
    # Geometric(p = 2/m) needs p <= 1.
    if not _is_number(m) or m < 2:
      raise ValueError(f"{where}: \"mean_k\" must be a number >= 2, got "
                       f"{m!r}.")
    out["mean_k"] = float(m)
  for key in ("fixed_k", "episodes_per_instance", "orderings", "max_episodes"):
    if key in meta:
      k = meta[key]
      if not _is_number(k) or k != int(k) or k < 1:
        raise ValueError(f"{where}: \"{key}\" must be a whole number >= 1, "
                         f"got {k!r}.")
      out[key] = int(k)
  if "p_desc" in meta:
    p = meta["p_desc"]
    if not _is_number(p) or not 0 <= p <= 1:
      raise ValueError(f"{where}: \"p_desc\" must be a number in [0, 1], got "
                       f"{p!r}.")
    out["p_desc"] = float(p)
  descriptions = _descriptions(meta, where)
  if descriptions:
    out["descriptions"] = descriptions
  if "about" in meta:
    if not isinstance(meta["about"], str):
      raise ValueError(f"{where}: \"about\" must be a string.")
    out["about"] = meta["about"]
  return out


def _is_number(x: Any) -> bool:
  """A finite JSON number: Python's json reads `NaN` and `Infinity`, which
  would pass `m < 2`-style checks and fail only later, far from the file."""
  return (isinstance(x, (int, float)) and not isinstance(x, bool)
          and math.isfinite(x))
