"""Batch scoring job: a JSONL of questions -> per-option log-likelihoods.

    python -m spectrax.score --input=requests.jsonl --output=scores.jsonl \\
        --hf_checkpoint=DIR            # or --workdir=DIR [--step=N]

Input lines: ``{"id", "prompt" | "messages" + "template", "options": [...],
"target": [...]?, "ordinal": bool?}``; ``"template": "chat"`` formats the
messages with the checkpoint's own chat template (docs/method.md#chat-template). Output lines: ``{"id", "logprobs",
"num_tokens", "greedy"}``, plus ``boundary_mismatch`` / ``truncated`` when set
and, with a ``target``, what ``target_metrics`` computes (the command line
passes ``spectrax.evaluation.metrics.distributional_metrics``; scoring sits
below evaluation, so it is handed in rather than imported).

Resumable: lines are appended in batches, each batch one ``write`` + flush +
fsync. On restart the ids already in the output are skipped and a trailing
partial line (a crash mid-write) is cut off first, so every id appears exactly
once. A malformed input line is an error naming its line number, raised before
the model loads; with ``--skip_bad`` such lines (and requests the scorer
rejects, e.g. too long) are counted and written to ``OUTPUT.rejected.jsonl``.

Several hosts (``jax.process_count() > 1``): process i scores the lines with
``(line_number - 1) % n == i`` on a mesh of its own devices (no cross-host
collectives, so processes never wait on each other per batch), appending to
``OUTPUT.part-i-of-n``; after a barrier process 0 appends every part line whose
id is not yet in OUTPUT and deletes the parts. Within one process lines keep
input order; across parts they are grouped by part. The model must fit one
host's devices.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence

import jax
import tqdm

from spectrax.checkpoints.loading import load_model
from spectrax.data import templates as templates_lib
from spectrax.data.episodes import as_messages
from spectrax.parallel import sharding
from spectrax.scoring.scorer import Scorer, ScoreRequest, ScoreResult

FIELDS = ("id", "prompt", "messages", "template", "options", "target", "ordinal")


class JobError(ValueError):
  """A requests file, output file or setting the user must fix (`FILE:LINE: why`)."""


# -- input -----------------------------------------------------------------


def check_request(obj) -> str | None:
  """Why a parsed input line is not a valid request, or None."""
  if not isinstance(obj, dict):
    return f"expected a JSON object, got {type(obj).__name__}"
  unknown = sorted(set(obj) - set(FIELDS))
  if unknown:
    return f"unknown field(s) {unknown}; fields are {list(FIELDS)}"
  if not isinstance(obj.get("id"), str) or not obj["id"]:
    return "'id' must be a non-empty string"
  options = obj.get("options")
  if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
    return "'options' must be a non-empty list of strings"
  if ("prompt" in obj) == ("messages" in obj):
    return "give exactly one of 'prompt' and 'messages' (+ 'template')"
  if "prompt" in obj:
    if not isinstance(obj["prompt"], str):
      return "'prompt' must be a string"
    if "template" in obj:
      return "'template' goes with 'messages'; a raw 'prompt' is used as is"
  else:
    if obj.get("template") not in templates_lib.TEMPLATE_NAMES:
      return (f"'messages' needs 'template', one of {list(templates_lib.TEMPLATE_NAMES)}; got "
              f"{obj.get('template')!r}")
    if not isinstance(obj["messages"], list):
      return "'messages' must be a list of {'role', 'content'} objects"
    try:
      as_messages(obj["messages"])
    except (ValueError, TypeError, AttributeError) as e:
      return f"'messages': {e}"
  target = obj.get("target")
  if target is not None:
    ok = isinstance(target, list) and all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and t >= 0
        for t in target)
    if not ok or len(target) != len(options):
      return (f"'target' must be a list of {len(options)} non-negative numbers (one per "
              "option)")
  if not isinstance(obj.get("ordinal", False), bool):
    return "'ordinal' must be true or false"
  return None


def read_lines(path: str, own: Callable[[int], bool]
               ) -> Iterator[tuple[int, str, object, str | None]]:
  """``(line_number, text, parsed or None, why not parsed)`` for this process's
  non-blank lines. Read as bytes, so one line that is not UTF-8 is a malformed
  line like any other rather than the end of the file."""
  with open(path, "rb") as f:
    for n, raw in enumerate(f, 1):
      if not raw.strip() or not own(n):
        continue
      try:
        text = raw.decode("utf-8").rstrip("\n")
      except UnicodeDecodeError as e:
        yield n, raw.decode("utf-8", "replace").rstrip("\n"), None, f"not UTF-8 text ({e})"
        continue
      try:
        yield n, text, json.loads(text), None
      except json.JSONDecodeError as e:
        yield n, text, None, f"not JSON ({e})"


def validate_input(path: str, own: Callable[[int], bool]) -> tuple[list[tuple[int, str]], int]:
  """``([(line, reason)] of malformed lines, number of lines)`` of this process's share."""
  bad, seen, total = [], {}, 0
  for n, _, obj, error in read_lines(path, own):
    total += 1
    if error is not None:
      bad.append((n, error))
      continue
    reason = check_request(obj)
    if reason is None and obj["id"] in seen:
      reason = f"id {obj['id']!r} repeats line {seen[obj['id']]}"
    if reason is None:
      seen[obj["id"]] = n
    else:
      bad.append((n, reason))
  return bad, total


def to_request(obj: dict) -> ScoreRequest:
  return ScoreRequest(id=obj["id"], options=obj["options"], prompt=obj.get("prompt"),
                      messages=obj.get("messages"), template=obj.get("template"),
                      target=obj.get("target"))


# -- output ----------------------------------------------------------------


def part_path(output: str, index: int, count: int) -> str:
  return output if count == 1 else f"{output}.part-{index}-of-{count}"


def rejected_path(output: str) -> str:
  return f"{output}.rejected.jsonl"


def recover_lines(path: str) -> list[dict]:
  """The complete lines of a JSONL this job appends to, cutting a trailing partial line.

  A crash mid-write can only leave the last line without its newline; that
  line is removed from the file (its request is scored again).

  Raises:
    JobError: a complete line that is not JSON (the file was edited or is
      not this job's output).
  """
  if not os.path.exists(path):
    return []
  with open(path, "rb") as f:
    data = f.read()
  end = data.rfind(b"\n") + 1
  if end != len(data):
    with open(path, "r+b") as f:
      f.truncate(end)
      f.flush()
      os.fsync(f.fileno())
  out = []
  for n, line in enumerate(data[:end].splitlines(), 1):
    try:
      out.append(json.loads(line))
    except json.JSONDecodeError as e:
      raise JobError(f"{path}:{n}: not a JSON line ({e}); this file is corrupt or not a "
                     "spectrax.score output: move it away or fix the line") from None
  return out


class LineWriter:
  """Appends JSON lines in batches: one write + flush + fsync per batch."""

  def __init__(self, path: str, flush_every: int = 64):
    self.path, self.flush_every = path, flush_every
    self._buffer: list[bytes] = []
    self._file = None

  def add(self, obj: dict) -> None:
    # allow_nan=False: a bare NaN is not JSON; `result_line` says which id first.
    self._buffer.append(
        (json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8"))
    if len(self._buffer) >= self.flush_every:
      self.flush()

  def flush(self) -> None:
    if not self._buffer:
      return
    if self._file is None:  # Opened lazily: no empty files for nothing rejected.
      self._file = open(self.path, "ab")
    self._file.write(b"".join(self._buffer))
    self._file.flush()
    os.fsync(self._file.fileno())
    self._buffer = []

  def __enter__(self) -> "LineWriter":
    return self

  def __exit__(self, *exc) -> None:
    self.flush()  # Lines already computed are complete results: keep them.
    if self._file is not None:
      self._file.close()


def merge_parts(output: str, count: int) -> int:
  """Appends each part's lines whose id is not yet in ``output``, then deletes the parts.

  Safe to rerun after a crash at any point (ids already merged are skipped).
  Returns the number of lines appended.
  """
  done = {o["id"] for o in recover_lines(output)}
  seen_rejects = {o["line"] for o in recover_lines(rejected_path(output))}
  added = 0
  with LineWriter(output) as out, LineWriter(rejected_path(output)) as rejects:
    for i in range(count):
      for obj in recover_lines(part_path(output, i, count)):
        if obj["id"] not in done:
          done.add(obj["id"])
          out.add(obj)
          added += 1
      for obj in recover_lines(rejected_path(part_path(output, i, count))):
        if obj["line"] not in seen_rejects:
          seen_rejects.add(obj["line"])
          rejects.add(obj)
  for i in range(count):
    for path in (part_path(output, i, count), rejected_path(part_path(output, i, count))):
      if os.path.exists(path):
        os.remove(path)
  return added


# -- scoring ---------------------------------------------------------------


# (target, logprobs, ordinal=...) -> {metric: value}
TargetMetrics = Callable[..., dict]


def result_line(req: dict, res: ScoreResult, target_metrics: TargetMetrics | None = None,
                checkpoint: str = "the model") -> dict:
  """The output object of one scored request (metrics when it has a target).

  Raises:
    JobError: a log-probability or metric that is not finite (NaN, inf): the
      output is strict JSON and a NaN score is never a result, so the job
      stops naming the request and ``checkpoint`` (lines before it are kept).
  """
  out = {"id": res.id, "logprobs": res.logprobs, "num_tokens": res.num_tokens,
         "greedy": res.greedy}
  if any(res.boundary_mismatch):
    out["boundary_mismatch"] = res.boundary_mismatch
  if res.truncated:
    out["truncated"] = True
  if target_metrics is not None and req.get("target") is not None:
    out.update(target_metrics(req["target"], res.logprobs,
                              ordinal=bool(req.get("ordinal", False))))
  bad = _non_finite(out)
  if bad:
    raise JobError(f"request {res.id!r}: {bad} is not finite with {checkpoint}; its weights "
                   "are probably corrupt or overflow in this dtype (scores before it are kept; "
                   "try another checkpoint or --dtype=float32)")
  return out


def _non_finite(out: dict) -> str | None:
  """``"field=value"`` of the first number in a result line that is not finite."""
  for key, value in out.items():
    for v in value if isinstance(value, list) else [value]:
      if isinstance(v, float) and not math.isfinite(v):
        return f"{key}={v}"
  return None


def score_file(input_path: str, output_path: str, scorer: Scorer, *, skip_bad: bool = False,
               process_index: int = 0, process_count: int = 1, flush_every: int = 64,
               progress: bool = True, checked: tuple[list, int] | None = None,
               target_metrics: TargetMetrics | None = None,
               checkpoint: str = "the model") -> dict:
  """Scores ``input_path`` into ``output_path`` (this process's share), resuming.

  Args:
    input_path: the requests JSONL.
    output_path: the final output; with ``process_count > 1`` this process
      writes ``OUTPUT.part-{i}-of-{n}`` (see ``merge_parts``).
    scorer: a ``Scorer`` on this process's devices.
    skip_bad: count and set aside malformed / unscorable lines instead of raising.
    process_index, process_count: this process's share of the lines.
    flush_every: result lines per write + fsync.
    progress: show a tqdm bar.
    checked: ``validate_input``'s result, if already computed.
    target_metrics: adds metrics to the lines of requests with a ``target``.
    checkpoint: what the scores came from, named in a non-finite score's error.

  Returns:
    Counts: ``scored``, ``already_done``, ``rejected`` and the scorer's stats.

  Raises:
    JobError: a malformed line (``FILE:LINE: reason``) without ``skip_bad``,
      an unscorable request (``FILE:LINE:`` and the scorer's reason), a
      non-finite score, or ``output_path`` being the input.
  """
  check_output_is_not_input(input_path, output_path)
  own = lambda n: (n - 1) % process_count == process_index  # noqa: E731
  bad, total = checked if checked is not None else validate_input(input_path, own)
  _check_malformed(input_path, bad, skip_bad)
  path = part_path(output_path, process_index, process_count)
  done = {o["id"] for o in recover_lines(path)}
  if process_count > 1:
    done |= {o["id"] for o in recover_lines(output_path)}
  rejects_done = {o["line"] for o in recover_lines(rejected_path(path))}
  bad_lines = dict(bad)
  counts = {"scored": 0, "already_done": 0, "rejected": 0}
  pending: dict[str, tuple[int, dict]] = {}
  bar = tqdm.tqdm(total=total, unit="q", desc="score", disable=not progress)

  def reject(line: int, text: str, reason: str):
    counts["rejected"] += 1
    bar.update(1)
    if line not in rejects_done:
      rejects.add({"line": line, "error": reason, "text": text})

  def requests() -> Iterator[ScoreRequest]:
    for line, text, obj, _ in read_lines(input_path, own):
      if line in bad_lines:
        reject(line, text, bad_lines[line])
      elif obj["id"] in done:
        counts["already_done"] += 1
        bar.update(1)
      else:
        pending[obj["id"]] = (line, obj)
        yield to_request(obj)

  def on_error(req: ScoreRequest, err: ValueError):
    line, obj = pending.pop(req.id)
    if not skip_bad:
      raise JobError(f"{input_path}:{line}: {err}") from err
    reject(line, json.dumps(obj, ensure_ascii=False), str(err))

  with LineWriter(path, flush_every) as out, LineWriter(rejected_path(path), 1) as rejects:
    for res in scorer.score(requests(), on_error=on_error):
      _, obj = pending.pop(res.id)
      out.add(result_line(obj, res, target_metrics, checkpoint))
      counts["scored"] += 1
      bar.update(1)
  bar.close()
  return {**counts, **scorer.stats}


def check_output_is_not_input(input_path: str, output_path: str) -> None:
  """Refuses an output (or its part / rejected files) that is the input file.

  The output is appended to and its ids count as done, so scoring a file into
  itself would score nothing and append to the requests. Compared as files
  (``os.path.samefile``), so another spelling or a symlink is caught too.
  """
  for path in (output_path, rejected_path(output_path)):
    same = os.path.realpath(path) == os.path.realpath(input_path)
    if not same and os.path.exists(path) and os.path.exists(input_path):
      same = os.path.samefile(path, input_path)
    if same:
      raise JobError(f"--output={output_path} is the input file {input_path}: scores are "
                     "appended to the output, so give another file (e.g. --output=scores.jsonl)")


def _check_malformed(input_path: str, bad: list[tuple[int, str]], skip_bad: bool) -> None:
  if bad and not skip_bad:
    line, reason = bad[0]
    raise JobError(f"{input_path}:{line}: {reason} ({len(bad)} malformed lines in all; fix "
                   "them or pass --skip_bad to write them to OUTPUT.rejected.jsonl)")


def config_settings(spec: str) -> dict:
  """Scoring settings from a training config file: ``PATH[:ARG]`` as ``--config`` takes.

  Returns ``tensor`` (the mesh's tensor ways), ``dtype`` (compute) and
  ``attention_backend``; parameters are loaded in the compute dtype.
  """
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise JobError(f"--config={spec!r}: no file {path!r} (e.g. configs/gemma12b.py:gpu)")
  module_spec = importlib.util.spec_from_file_location("spectrax_score_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  c = module.get_config(arg) if arg else module.get_config()
  tensor = int(c.mesh.get("tensor", 1))
  return {"tensor": tensor if tensor > 0 else 1, "dtype": c.model.dtype,
          "param_dtype": c.model.dtype, "attention_backend": c.model.attention_backend}


def score_job(input_path: str, output_path: str, *, hf_checkpoint: str | None = None,
              workdir: str | None = None, step: int | None = None, skip_bad: bool = False,
              left_truncate: bool = False, buckets: Sequence[int] | None = None,
              rows_per_batch: int | None = None, config: str | None = None,
              tensor: int | None = None, dtype: str | None = None,
              param_dtype: str | None = None, attention_backend: str | None = None,
              progress: bool = True, target_metrics: TargetMetrics | None = None) -> dict:
  """What ``python -m spectrax.score`` does: load the model, score this process's share.

  The input is validated before the (slow) model load, so a bad file fails in
  seconds. With several processes (``jax.distributed`` already initialized)
  each writes its part on its own devices and process 0 merges them.
  ``config`` (``configs/NAME.py[:ARG]``) supplies the tensor ways and dtypes
  the other arguments do not; ``buckets`` / ``rows_per_batch`` default to the
  ``Scorer``'s; ``target_metrics`` as in ``score_file``.

  Returns:
    ``output``, ``process`` and ``score_file``'s counts.

  Raises:
    JobError: a missing or malformed input, a corrupt output, a bad ``config``.
    And ``load_model``'s errors for a wrong checkpoint or step.
  """
  if not os.path.isfile(input_path):
    raise JobError(f"--input={input_path}: no such file")
  check_output_is_not_input(input_path, output_path)
  index, count = jax.process_index(), jax.process_count()
  own = lambda n: (n - 1) % count == index  # noqa: E731
  checked = validate_input(input_path, own)
  _check_malformed(input_path, checked[0], skip_bad)
  settings = config_settings(config) if config else {}
  config_tensor = settings.pop("tensor", 1)
  tensor = tensor or config_tensor
  given = {"dtype": dtype, "param_dtype": param_dtype, "attention_backend": attention_backend}
  settings.update({k: v for k, v in given.items() if v is not None})
  mesh = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": tensor},
                            devices=jax.local_devices())
  loaded = load_model(hf_checkpoint=hf_checkpoint, workdir=workdir, step=step, mesh=mesh,
                      **settings)
  sizes = {"buckets": tuple(buckets) if buckets else None, "rows_per_batch": rows_per_batch}
  scorer = Scorer(loaded.model, loaded.tokenizer, mesh=mesh, left_truncate=left_truncate,
                  **{k: v for k, v in sizes.items() if v is not None})
  counts = score_file(input_path, output_path, scorer, skip_bad=skip_bad, process_index=index,
                      process_count=count, progress=progress, checked=checked,
                      target_metrics=target_metrics,
                      checkpoint=hf_checkpoint or f"{workdir} ({loaded.name})")
  if count > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices("spectrax.score: parts written")
    if index == 0:
      merge_parts(output_path, count)
    multihost_utils.sync_global_devices("spectrax.score: merged")
  return {"output": output_path, "process": index, **counts}
