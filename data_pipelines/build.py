r"""Builds the Spectrum Suite: `python -m data_pipelines.build --out=DIR`.

  python -m data_pipelines.build --out=suite                 # synthetic + any real source found
  python -m data_pipelines.build --out=suite --raw_dir=raw   # real sources from downloaded files
  python -m data_pipelines.build --out=suite --tasks=coinflip,urn
  python -m data_pipelines.build --out=suite --user_tasks=my_tasks/
  python -m data_pipelines.build --list --raw_dir=raw      # tasks and which raw files are there

Writes one TFDS/ArrayRecord dataset per task under DIR and a manifest
`DIR/suite.json` that spectrax reads. The default SentencePiece tokenizer
(`DIR/tokenizer.model`, for models trained from scratch) is trained from the
built text by spectrax on first use (`spectrax.data.tokenizer_training`):
this package never imports spectrax (`python -m spectrax.show_mixture` reports a
built suite's episodes and tokens per task).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import sys

from absl import app
from absl import flags
from absl import logging as absl_logging

from data_pipelines import registry
from data_pipelines import suite
from data_pipelines import user_tasks
from data_pipelines.schema import (DEFAULT_TOKENIZER, MANIFEST, BuildContext,
                                   MissingRawFileError, TaskSpec)

_OUT = flags.DEFINE_string("out", None, "Directory to write the suite to.")
_TASKS = flags.DEFINE_list(
    "tasks", None, "Task names to build (default: every synthetic task, every "
    "real source whose raw files are in --raw_dir, and --user_tasks).")
_RAW_DIR = flags.DEFINE_string("raw_dir", None,
                               "Directory holding downloaded raw source files.")
_USER_TASKS = flags.DEFINE_string(
    "user_tasks", None, "Directory of your own tasks as JSONL files (README).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every generator and split.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False,
                               "Rebuild tasks that already exist in --out.")
_LIST = flags.DEFINE_bool(
    "list", False, "List the known tasks, whether their raw files are in "
    "--raw_dir, and exit.")


def _missing_raw_files(spec: TaskSpec, raw_dir: str | None):
  if not spec.raw_files:
    return []
  return [f for f in spec.raw_files
          if raw_dir is None or not os.path.exists(os.path.join(raw_dir, f.path))]


def read_manifest(out: str) -> dict:
  """The suite's manifest ({"tasks": {}} for a new suite).

  Raises:
    ValueError: the manifest is not UTF-8 JSON (naming it and the way out).
  """
  path = os.path.join(out, MANIFEST)
  if not os.path.exists(path):
    return {"tasks": {}}
  try:
    with open(path, encoding="utf-8") as f:
      manifest = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f"{path}: not a suite manifest ({e}); rebuild the suite "
                     f"into a new directory or remove {path} and rebuild "
                     f"every task with --overwrite.") from None
  if not isinstance(manifest, dict) or not isinstance(manifest.get("tasks"),
                                                      dict):
    raise ValueError(f"{path}: not a suite manifest (no \"tasks\" object); "
                     f"remove it and rebuild with --overwrite.")
  return manifest


def write_manifest(out: str, manifest: dict) -> None:
  path = os.path.join(out, MANIFEST)
  with open(path + ".tmp", "w") as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
  os.replace(path + ".tmp", path)


def build(out: str, specs: list[TaskSpec], *, seed: int, raw_dir: str | None,
          overwrite: bool = False, explicit: bool = False) -> list[str]:
  """Builds `specs` into `out`; returns error messages of tasks not built.

  A real source without its raw files is skipped with a message naming the
  files; with `explicit` (the user named the task) that is an error.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tfds.disable_progress_bar()  # One line per task instead (also under spectrax.train).
  os.makedirs(out, exist_ok=True)
  manifest = read_manifest(out)
  if manifest.get("seed", seed) != seed and not overwrite:
    raise ValueError(f"{out} was built with seed {manifest['seed']}, not "
                     f"{seed}; use another --out or pass --overwrite.")
  manifest["seed"] = seed
  ctx = BuildContext(seed=seed, raw_dir=raw_dir)
  errors: list[str] = []
  for spec in specs:
    missing = _missing_raw_files(spec, raw_dir)
    if missing:
      msg = str(MissingRawFileError(spec.name, raw_dir, missing))
      if explicit:
        errors.append(msg)
      else:
        more = f" and {len(missing) - 2} more" if len(missing) > 2 else ""
        print(f"{spec.name}: skipped, raw files not in --raw_dir: "
              f"{', '.join(f.path for f in missing[:2])}{more} (see --list)")
      continue
    directory = suite.task_dir(out, spec.name)
    if os.path.exists(directory):
      if not overwrite:
        print(f"{spec.name}: exists, kept (use --overwrite to rebuild)")
        manifest["tasks"].setdefault(spec.name, _entry(out, directory, spec))
        continue
      shutil.rmtree(directory)
    try:
      # tfds prints "Downloading and preparing dataset ..." for every task.
      with contextlib.redirect_stdout(io.StringIO()):
        directory = suite.build_task(spec, ctx, out)
    except MissingRawFileError as e:
      (errors.append if explicit else logging.warning)(str(e))
      continue
    manifest["tasks"][spec.name] = _entry(out, directory, spec)
    _forget_default_tokenizer(out, manifest)
    write_manifest(out, manifest)
    print(f"{spec.name}: built")
  write_manifest(out, manifest)
  return errors


def _forget_default_tokenizer(out: str, manifest: dict) -> None:
  """The default tokenizer is trained from the built text: stale once a task
  is (re)built, so it is removed and spectrax trains it anew on first use."""
  manifest.pop("tokenizer", None)
  path = os.path.join(out, DEFAULT_TOKENIZER)
  if os.path.exists(path):
    os.remove(path)


def _entry(out: str, directory: str, spec: TaskSpec) -> dict:
  return {"dir": os.path.relpath(directory, out),
          "suite_split": spec.suite_split, "kind": spec.kind}


def list_tasks(known: dict[str, TaskSpec], raw_dir: str | None,
               user: set[str] = frozenset()) -> str:
  """One line per task: name, suite split, kind, then each raw file with
  `ok` (in raw_dir) or `missing`, or `synthetic` / `user`; a summary last."""
  lines = []
  counts = {"synthetic": 0, "ready": 0, "missing": 0}
  for name, spec in sorted(known.items()):
    if not spec.raw_files:
      files = "user" if name in user else "synthetic"
      counts["synthetic"] += 1
    else:
      missing = {f.path for f in _missing_raw_files(spec, raw_dir)}
      counts["missing" if missing else "ready"] += 1
      files = _files_status([f.path for f in spec.raw_files], missing)
    lines.append(f"{name:36s} {spec.suite_split:5s} {spec.kind:14s} {files}")
  where = (f"in --raw_dir={raw_dir}" if raw_dir is not None
           else "(no --raw_dir given: every raw file counts as missing)")
  lines.append(
      f"{len(known)} tasks: {counts['synthetic']} without raw files, "
      f"{counts['ready']} with every raw file present, {counts['missing']} "
      f"missing raw files {where}; fetch them with python -m "
      "data_pipelines.download --raw_dir=DIR (--list there says how).")
  return "\n".join(lines)


def _files_status(paths: list[str], missing: set[str]) -> str:
  """`path ok`/`path missing` per file; many files under one folder with one
  status are folded into one entry."""
  if len(paths) > 4 and len({p in missing for p in paths}) == 1:
    common = os.path.commonpath(paths)
    status = "missing" if paths[0] in missing else "ok"
    return f"{common}/ ({len(paths)} files) {status}"
  return ", ".join(f"{p} {'missing' if p in missing else 'ok'}" for p in paths)


def _quiet_logs() -> None:
  """tfds logs its every step through absl: hidden unless --verbosity is given
  (this package does not import spectrax, whose `cli` does the same)."""
  if flags.FLAGS["verbosity"].present:
    return
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger("absl").setLevel(logging.ERROR)


def main(argv):
  """Expected errors (a bad user task or raw file, a corrupt manifest, a
  missing raw file) end in one `error:` line and exit 2, without a traceback."""
  try:
    return _main(argv)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    return 2


def _main(argv):
  del argv
  _quiet_logs()
  known = registry.all_tasks()
  extra = user_tasks.load_user_tasks(_USER_TASKS.value) if _USER_TASKS.value else []
  for spec in extra:
    if spec.name in known:
      raise app.UsageError(f"user task {spec.name!r} has the name of a "
                           "built-in task; rename its file.")
    known[spec.name] = spec
  if _LIST.value:
    print(list_tasks(known, _RAW_DIR.value, user={s.name for s in extra}))
    return 0
  if not _OUT.value:
    raise app.UsageError("--out is required: the directory to build into.")
  if _TASKS.value:
    specs = registry.select(known, _TASKS.value)
  else:
    specs = list(known.values())
  errors = build(_OUT.value, specs, seed=_SEED.value, raw_dir=_RAW_DIR.value,
                 overwrite=_OVERWRITE.value, explicit=bool(_TASKS.value))
  for e in errors:
    print(e, file=sys.stderr)
  return 1 if errors else 0


if __name__ == "__main__":
  app.run(main)
