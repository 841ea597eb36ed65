r"""Downloads the real sources' raw files: `python -m data_pipelines.download`.

  python -m data_pipelines.download --raw_dir=raw                 # every real source
  python -m data_pipelines.download --raw_dir=raw --tasks=mmlu,habermas_question
  python -m data_pipelines.download --raw_dir=raw --list          # what is there, what is not

Fetches what each task's raw files need (`schema.Download`) into --raw_dir,
skipping what is already there: URLs resume from a `.part` file, Hugging Face
files come through huggingface_hub, sizes and sha256 sums are checked and
archives unpacked (`data_pipelines.fetching`). Files with no public address
(a licence to accept, a form) are printed with what to do and where to put
them. Then build with `python -m data_pipelines.build --out=suite --raw_dir=raw`.

Exit status: 0 when every selected task has its files; 1 when some still lack
files you must fetch by hand (listed); 2 on an error (a failed or mismatched
download, a bad flag), each named on an `error:` line.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags

from data_pipelines import fetching
from data_pipelines import registry

_RAW_DIR = flags.DEFINE_string("raw_dir", None,
                               "Directory to download raw source files into.")
_TASKS = flags.DEFINE_list(
    "tasks", None, "Tasks whose files to fetch (default: every real source).")
_LIST = flags.DEFINE_bool(
    "list", False, "List each download (present/missing/manual, target, size, "
    "source, tasks) and exit.")
_HF_ENDPOINT = flags.DEFINE_string(
    "hf_endpoint", os.environ.get("HF_ENDPOINT") or fetching.DEFAULT_HF_ENDPOINT,
    "Base URL of the Hugging Face Hub (default: $HF_ENDPOINT or "
    "https://huggingface.co).")
_HF_CACHE_DIR = flags.DEFINE_string(
    "hf_cache_dir", None, "huggingface_hub's cache (default: its own).")
_URL_REWRITE = flags.DEFINE_multi_string(
    "url_rewrite", [], "PREFIX=>NEWPREFIX: fetch URLs starting with PREFIX "
    "from NEWPREFIX instead (a mirror; tests). Repeatable; also read, "
    f"whitespace-separated, from ${fetching.URL_REWRITE_ENV}.")
_KEEP_ARCHIVES = flags.DEFINE_bool(
    "keep_archives", False, "Keep zip/tar.gz/bz2 files after unpacking them.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar per file.")


def main(argv):
  """Expected errors end in one `error:` line each and exit 2, without a
  traceback."""
  try:
    return _main(argv)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    return 2


def _selected():
  known = registry.all_tasks()
  if _TASKS.value:
    return registry.select(known, _TASKS.value)
  return [spec for spec in known.values() if spec.raw_files]


def _main(argv):
  del argv
  if not _RAW_DIR.value:
    raise app.UsageError("--raw_dir is required: the directory to download "
                         "into (then build with --raw_dir set to it).")
  rewrites = fetching.parse_url_rewrites(
      fetching.env_url_rewrites() + list(_URL_REWRITE.value))
  specs = _selected()
  entries = fetching.collect(specs)
  fetcher = fetching.Fetcher(
      _RAW_DIR.value, hf_endpoint=_HF_ENDPOINT.value, url_rewrites=rewrites,
      hf_cache_dir=_HF_CACHE_DIR.value, keep_archives=_KEEP_ARCHIVES.value,
      progress=_PROGRESS.value)
  if _LIST.value:
    return _list(fetcher, entries)
  if not entries:
    print("nothing to download: the selected tasks need no raw files.")
    return 0
  errors = 0
  manual = 0
  for entry in entries:
    try:
      result = fetcher.ensure(entry)
    except fetching.DownloadError as e:
      print(f"error: {e}", file=sys.stderr, flush=True)
      errors += 1
      continue
    if result == fetching.PRESENT:
      print(f"{entry.target}: present")
    elif result == fetching.MANUAL:
      manual += 1
    else:
      print(f"{entry.target}: done")
  lacking = _tasks_lacking_files(fetcher, specs)
  if lacking:
    print(f"\n{len(lacking)} task(s) still lack raw files under "
          f"{os.path.abspath(_RAW_DIR.value)}:", file=sys.stderr)
    for name, paths in lacking:
      more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
      print(f"  {name}: {', '.join(paths[:3])}{more}", file=sys.stderr)
    return 2 if errors else 1
  print(f"all {len(specs)} selected task(s) have their raw files; build with "
        f"python -m data_pipelines.build --out=suite --raw_dir={_RAW_DIR.value}")
  return 2 if errors else 0


def _tasks_lacking_files(fetcher, specs):
  out = []
  for spec in specs:
    paths = [f.path for f in spec.raw_files
             if not os.path.isfile(fetcher.path(f.path))]
    if paths:
      out.append((spec.name, paths))
  return out


def _list(fetcher, entries) -> int:
  counts = {fetching.PRESENT: 0, fetching.MISSING: 0, fetching.MANUAL: 0}
  for entry in entries:
    status = fetcher.status(entry)
    counts[status] += 1
    d = entry.download
    unpack = f" -> {d.unpack_to}" if d.unpack else ""
    print(f"{status:8s} {d.target}{unpack}  "
          f"{fetching.human_size(d.size)}  {fetching.source_of(d)}  "
          f"[{', '.join(entry.tasks)}]")
  print(f"{len(entries)} download(s): {counts[fetching.PRESENT]} present, "
        f"{counts[fetching.MISSING]} missing, {counts[fetching.MANUAL]} manual "
        f"(under {os.path.abspath(fetcher.raw_dir)})")
  return 0


if __name__ == "__main__":
  app.run(main)
