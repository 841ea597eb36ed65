"""Shared plumbing for the real-source converters.

Every converter needs the same three things: check that its raw files are
present (and say where to get them when not), read a table, and turn a bad
cell into an error that names the file, the line or row, and the column. The
readers here use only the standard library and pyarrow (imported when a
parquet file is read), so importing a converter stays cheap.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import random
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from data_pipelines.schema import BuildContext, MissingRawFileError, RawFile

# Cells pandas would read as NaN; the authors' loaders drop or skip them, so
# the converters treat them as "no value" rather than as text.
MISSING = frozenset({"", "NA", "N/A", "NaN", "nan", "null", "None"})

# GlobalOQA selections and OpinionQA rows can exceed the csv module's
# 128 KiB default field limit.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def raw_paths(task: str, ctx: BuildContext,
              files: Sequence[RawFile]) -> list[str]:
  """Absolute paths of `files` under `ctx.raw_dir`, in order.

  Raises:
    MissingRawFileError: listing every absent file and where it is published.
  """
  if ctx.raw_dir is None:
    raise MissingRawFileError(task, None, files)
  paths = [os.path.join(ctx.raw_dir, f.path) for f in files]
  missing = [f for f, p in zip(files, paths) if not os.path.isfile(p)]
  if missing:
    raise MissingRawFileError(task, ctx.raw_dir, missing)
  return paths


def bad_value(path: str, where: str, column: str, message: str) -> ValueError:
  """The error for one unusable cell: `where` is e.g. 'line 7' or 'row 3'."""
  return ValueError(f"{path}, {where}, column {column!r}: {message}")


def read_csv(path: str,
             columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
  """Yields (line, record) for each record of a CSV file with a header.

  Args:
    path: the file.
    columns: columns that must be in the header.

  Yields:
    line: the 1-based line on which the record starts (the header is line
      1; a quoted field may span lines, so this is not the record index).
    record: column name -> raw cell text.

  Raises:
    ValueError: a required column is absent, a record has the wrong number
      of fields, or the file is not valid UTF-8 CSV.
  """
  # utf-8-sig: files saved from spreadsheets often start with a BOM, which
  # would otherwise become part of the first column's name.
  with open(path, newline="", encoding="utf-8-sig") as f:
    reader = csv.reader(f)
    try:
      header = next(reader)
    except StopIteration:
      raise ValueError(f"{path}: the file is empty; expected a header with "
                       f"columns {list(columns)}.") from None
    except UnicodeDecodeError as e:
      raise _not_utf8(path, e) from e
    except csv.Error as e:
      raise ValueError(f"{path}, line 1: cannot read the header: {e}") from e
    missing = [c for c in columns if c not in header]
    if missing:
      raise ValueError(f"{path}: missing column(s) {missing}; the header has "
                       f"{header}.")
    start = reader.line_num + 1
    while True:
      try:
        fields = next(reader)
      except StopIteration:
        return
      except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e
      except csv.Error as e:
        raise ValueError(f"{path}, line {start}: cannot parse the record: "
                         f"{e}") from e
      line, start = start, reader.line_num + 1
      if not fields:  # a blank line, not a record
        continue
      if len(fields) != len(header):
        raise ValueError(f"{path}, line {line}: {len(fields)} fields but the "
                         f"header has {len(header)}.")
      yield line, dict(zip(header, fields))


def _not_utf8(path: str, error: UnicodeDecodeError) -> ValueError:
  """The error for a CSV that is not UTF-8, on the line of the first bad byte.

  The text reader decodes whole blocks, so the record being parsed when it
  fails is not where the byte is; the file is scanned again, as bytes, to say.
  """
  with open(path, "rb") as f:
    for n, raw in enumerate(f, 1):
      try:
        raw.decode("utf-8")
      except UnicodeDecodeError as e:
        return ValueError(f"{path}, line {n}: not UTF-8 text ({e.reason} at "
                          f"byte {e.start + 1} of the line); save the file "
                          "as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).")
  return ValueError(f"{path}: not UTF-8 text ({error}); save the file as "
                    "UTF-8.")


def read_parquet(path: str, columns: Sequence[str]) -> list[dict[str, Any]]:
  """The rows of a parquet file as dicts over `columns`.

  Nested struct columns are flattened to dotted names (`question.text`), so a
  file written from a flattened DataFrame and one with nested structs read
  alike.

  Raises:
    ValueError: the file is not parquet or a column is absent.
  """
  # Imported here so that listing or importing the converters stays cheap.
  import pyarrow as pa
  import pyarrow.parquet as pq

  try:
    table = pq.read_table(path)
  except (pa.ArrowException, OSError) as e:
    raise ValueError(f"{path}: cannot read as parquet: {e}") from e
  while any(pa.types.is_struct(field.type) for field in table.schema):
    table = table.flatten()
  missing = [c for c in columns if c not in table.column_names]
  if missing:
    raise ValueError(f"{path}: missing column(s) {missing}; the file has "
                     f"{table.column_names}.")
  return table.select(list(columns)).to_pylist()


def parse_json_line(path: str, line: int, raw: bytes) -> Any:
  """One JSON-lines record (Python's json accepts the bare `NaN` some
  files hold); an error names the file and line."""
  try:
    text = raw.decode("utf-8-sig" if line == 1 else "utf-8")
  except UnicodeDecodeError as e:
    raise ValueError(f"{path}, line {line}: not UTF-8 text ({e.reason} at "
                     f"byte {e.start + 1} of the line).") from e
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}, line {line}: not valid JSON ({e.msg} at "
                     f"column {e.colno}): {text[:80]!r}") from None


def read_jsonl(path: str, limit: int | None = None
               ) -> Iterator[tuple[int, dict[str, Any]]]:
  """Yields (line, object) for the first `limit` (default: every) non-blank
  line of a JSON-lines file.

  Raises:
    ValueError: a line is not UTF-8 JSON or not a JSON object, naming the
      file and line.
  """
  count = 0
  with open(path, "rb") as f:
    for n, raw in enumerate(f, 1):
      if not raw.strip():
        continue
      if limit is not None and count >= limit:
        return
      count += 1
      obj = parse_json_line(path, n, raw)
      if not isinstance(obj, dict):
        raise ValueError(f"{path}, line {n}: expected a JSON object, got "
                         f"{type(obj).__name__}.")
      yield n, obj


def parse_literal(path: str, where: str, column: str, text: str) -> Any:
  """A Python literal cell (list, dict, number) parsed without `eval`."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError, MemoryError, RecursionError) as e:
    raise bad_value(path, where, column,
                    f"not a Python literal ({e}): {text[:80]!r}") from e


def seeded_rng(ctx: BuildContext, *salt: object) -> random.Random:
  """A private RNG for one decision of one task, stable for a given seed.

  Salting with the task name (and e.g. the wave) keeps tasks independent:
  adding a task or an instance never changes another's draws.
  """
  # random.Random seeds a str through SHA-512, independent of PYTHONHASHSEED.
  return random.Random(":".join(map(str, (ctx.seed,) + salt)))
