"""Batch scoring job: a JSONL of questions -> per-option log-likelihoods.

    python -m spectrax.score --input=requests.jsonl --output=scores.jsonl \\
        --hf_checkpoint=DIR            # or --workdir=DIR [--step=N]

Input lines: ``{"id", "prompt" | "messages" + "template", "options": [...],
"target": [...]?, "ordinal": bool?}``. Output lines: ``{"id", "logprobs",
"num_tokens", "greedy"}``, plus ``boundary_mismatch`` / ``truncated`` when set
and, with a ``target``, the SPEC §7b metrics of
``spectrax.evaluation.metrics.distributional_metrics``.

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

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Iterator

import tqdm

from spectrax.data import templates as templates_lib
from spectrax.data.episodes import as_messages
from spectrax.scoring.scorer import Scorer, ScoreRequest, ScoreResult

FIELDS = ("id", "prompt", "messages", "template", "options", "target", "ordinal")


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
    if obj.get("template") not in templates_lib.TEMPLATES:
      return (f"'messages' needs 'template', one of {sorted(templates_lib.TEMPLATES)}; got "
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


def read_lines(path: str, own: Callable[[int], bool]) -> Iterator[tuple[int, str, object]]:
  """``(line_number, text, parsed or None)`` for this process's non-blank lines."""
  with open(path, encoding="utf-8") as f:
    for n, text in enumerate(f, 1):
      text = text.rstrip("\n")
      if not text.strip() or not own(n):
        continue
      try:
        obj = json.loads(text)
      except json.JSONDecodeError:
        obj = None
      yield n, text, obj


def validate_input(path: str, own: Callable[[int], bool]) -> tuple[list[tuple[int, str]], int]:
  """``([(line, reason)] of malformed lines, number of lines)`` of this process's share."""
  bad, seen, total = [], {}, 0
  for n, text, obj in read_lines(path, own):
    total += 1
    if obj is None:
      try:
        json.loads(text)
      except json.JSONDecodeError as e:
        bad.append((n, f"not JSON ({e})"))
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
    ValueError: a complete line that is not JSON (the file was edited or is
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
      raise ValueError(f"{path}:{n}: not a JSON line ({e}); this file is corrupt or not a "
                       "spectrax.score output: move it away or fix the line") from None
  return out


class LineWriter:
  """Appends JSON lines in batches: one write + flush + fsync per batch."""

  def __init__(self, path: str, flush_every: int = 64):
    self.path, self.flush_every = path, flush_every
    self._buffer: list[bytes] = []
    self._file = None

  def add(self, obj: dict) -> None:
    self._buffer.append((json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8"))
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


def result_line(req: dict, res: ScoreResult) -> dict:
  """The output object of one scored request (metrics when it has a target)."""
  out = {"id": res.id, "logprobs": res.logprobs, "num_tokens": res.num_tokens,
         "greedy": res.greedy}
  if any(res.boundary_mismatch):
    out["boundary_mismatch"] = res.boundary_mismatch
  if res.truncated:
    out["truncated"] = True
  if req.get("target") is not None:
    # pylint: disable-next=g-import-not-at-top
    from spectrax.evaluation.metrics import distributional_metrics
    out.update(distributional_metrics(req["target"], res.logprobs,
                                      ordinal=bool(req.get("ordinal", False))))
  return out


def score_file(input_path: str, output_path: str, scorer: Scorer, *, skip_bad: bool = False,
               process_index: int = 0, process_count: int = 1, flush_every: int = 64,
               progress: bool = True, checked: tuple[list, int] | None = None) -> dict:
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

  Returns:
    Counts: ``scored``, ``already_done``, ``rejected`` and the scorer's stats.

  Raises:
    ValueError: a malformed line (``FILE:LINE: reason``) without ``skip_bad``,
      or an unscorable request (it names the id).
  """
  own = lambda n: (n - 1) % process_count == process_index  # noqa: E731
  bad, total = checked if checked is not None else validate_input(input_path, own)
  if bad and not skip_bad:
    line, reason = bad[0]
    raise ValueError(f"{input_path}:{line}: {reason} ({len(bad)} malformed lines in all; fix "
                     "them or pass --skip_bad to write them to OUTPUT.rejected.jsonl)")
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
    for line, text, obj in read_lines(input_path, own):
      if line in bad_lines:
        reject(line, text, bad_lines[line])
      elif obj["id"] in done:
        counts["already_done"] += 1
        bar.update(1)
      else:
        pending[obj["id"]] = (line, obj)
        yield to_request(obj)

  def on_error(req: ScoreRequest, err: ValueError):
    if not skip_bad:
      raise err
    line, obj = pending.pop(req.id)
    reject(line, json.dumps(obj, ensure_ascii=False), str(err))

  with LineWriter(path, flush_every) as out, LineWriter(rejected_path(path), 1) as rejects:
    for res in scorer.score(requests(), on_error=on_error):
      _, obj = pending.pop(res.id)
      out.add(result_line(obj, res))
      counts["scored"] += 1
      bar.update(1)
  bar.close()
  return {**counts, **scorer.stats}


def config_settings(spec: str) -> dict:
  """Scoring settings from a training config file: ``PATH[:ARG]`` as ``--config`` takes.

  Returns ``tensor`` (the mesh's tensor ways), ``dtype`` (compute) and
  ``attention_backend``; parameters are loaded in the compute dtype.
  """
  # pylint: disable-next=g-import-not-at-top
  import importlib.util
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise ValueError(f"--config={spec!r}: no file {path!r} (e.g. configs/gemma12b.py:gpu)")
  module_spec = importlib.util.spec_from_file_location("spectrax_score_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  c = module.get_config(arg) if arg else module.get_config()
  tensor = int(c.mesh.get("tensor", 1))
  return {"tensor": tensor if tensor > 0 else 1, "dtype": c.model.dtype,
          "param_dtype": c.model.dtype, "attention_backend": c.model.attention_backend}


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="python -m spectrax.score", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--input", required=True, help="requests JSONL")
  p.add_argument("--output", required=True, help="scores JSONL (appended to; resumable)")
  p.add_argument("--hf_checkpoint", help="an HF checkpoint directory")
  p.add_argument("--workdir", help="a spectrax training run directory")
  p.add_argument("--step", type=int, help="the workdir checkpoint step (default: newest)")
  p.add_argument("--skip_bad", action="store_true",
                 help="set malformed lines aside in OUTPUT.rejected.jsonl instead of failing")
  p.add_argument("--left_truncate", action="store_true",
                 help="drop the start of prompts longer than the largest bucket (counted)")
  p.add_argument("--buckets", default="256,512,1024,2048,4096", help="row lengths, comma-separated")
  p.add_argument("--rows_per_batch", type=int, default=8,
                 help="rows per step; rounded up to a multiple of the device count")
  p.add_argument("--config", default=None,
                 help="a training config (configs/NAME.py[:ARG]) whose mesh.tensor, model.dtype "
                      "and model.attention_backend to use; the flags below override it")
  p.add_argument("--tensor", type=int, default=None, help="tensor-parallel ways (per host; "
                 "default 1)")
  p.add_argument("--dtype", default=None, help="activation dtype override, e.g. bfloat16")
  p.add_argument("--param_dtype", default=None, help="parameter dtype override")
  p.add_argument("--attention_backend", default=None, help="dense | xla | cudnn | splash")
  p.add_argument("--no_progress", action="store_true", help="no progress bar")
  p.add_argument("--coordinator_address", help="host:port of process 0 (multi-process runs "
                 "the platform does not set up; see spectrax/distributed.py)")
  p.add_argument("--num_processes", type=int, help="processes in the job")
  p.add_argument("--process_id", type=int, help="this process's index")
  return p


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  if (args.hf_checkpoint is None) == (args.workdir is None):
    _parser().error("give exactly one of --hf_checkpoint=DIR and --workdir=DIR")
  try:
    buckets = tuple(int(b) for b in args.buckets.split(","))
  except ValueError:
    _parser().error(f"--buckets={args.buckets!r}: give comma-separated integers, e.g. 512,2048")
  import jax  # pylint: disable=g-import-not-at-top
  from spectrax.parallel import distributed  # pylint: disable=g-import-not-at-top
  from spectrax.parallel import sharding  # pylint: disable=g-import-not-at-top
  try:
    distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
  except ValueError as e:
    _parser().error(str(e))
  from spectrax.checkpoints.loading import load_model  # pylint: disable=g-import-not-at-top
  index, count = jax.process_index(), jax.process_count()
  # Validate before the (slow) model load so a bad file fails in seconds.
  own = lambda n: (n - 1) % count == index  # noqa: E731
  checked = validate_input(args.input, own)
  bad = checked[0]
  if bad and not args.skip_bad:
    line, reason = bad[0]
    print(f"{args.input}:{line}: {reason} ({len(bad)} malformed lines in all; fix them or pass "
          "--skip_bad)", file=sys.stderr)
    return 2
  try:
    from_config = config_settings(args.config) if args.config else {}
  except ValueError as e:
    _parser().error(str(e))
  devices = jax.local_devices()
  tensor = args.tensor or from_config.pop("tensor", 1)
  mesh = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": tensor}, devices=devices)
  overrides = {**from_config, **{k: getattr(args, k) for k in ("dtype", "param_dtype",
                                                               "attention_backend")
                                 if getattr(args, k) is not None}}
  loaded = load_model(hf_checkpoint=args.hf_checkpoint, workdir=args.workdir, step=args.step,
                      mesh=mesh, **overrides)
  scorer = Scorer(loaded.model, loaded.tokenizer, mesh=mesh, buckets=buckets,
                  rows_per_batch=args.rows_per_batch,
                  left_truncate=args.left_truncate)
  counts = score_file(args.input, args.output, scorer, skip_bad=args.skip_bad,
                      process_index=index, process_count=count, progress=not args.no_progress,
                      checked=checked)
  if count > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices("spectrax.score: parts written")
    if index == 0:
      merge_parts(args.output, count)
    multihost_utils.sync_global_devices("spectrax.score: merged")
  print(json.dumps({"output": args.output, "process": index, **counts}))
  return 0


if __name__ == "__main__":
  sys.exit(main())
