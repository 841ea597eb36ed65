"""LeWiDi 2025 (Learning With Disagreements, 3rd edition): per-annotator labels.

Raw files (the shared task's data, Codabench competition 7192; the organisers
publish the same files in github.com/Le-Wi-Di/le-wi-di.github.io under
LeWiDi_3-2025/), one directory per dataset under lewidi/:
  {CSC,MP,Paraphrase,VariErrNLI}/<name>_train.json: a JSON object item id ->
    {"text": {...}, "annotators": "Ann1,Ann2", "annotations": {"Ann1": "3",
    ...}, "lang": "en", "other_info": {...}, ...}.
  <name>_annotators_meta.json: annotator id -> {"Gender": ..., "Age": ...}.
    Some of these files have trailing commas ("...",\n}); we accept them.

Six train tasks, one instance per annotator (order of first appearance), with
the annotator's demographics in the instance's one description:
  lewidi_csc_sarcasm_detection_individual: {context, response, lang} -> 1-6.
  lewidi_mp_irony_detection_individual: {post, reply, source, level,
    language_variety, lang} -> 0/1.
  lewidi_par_paraphrase_detection_individual[_categorical]: {question1,
    question2, lang} -> {paraphrase_rating (-5..5), explanation} (or the
    rating alone).
  lewidi_varierrnli_nli_detection_individual[_categorical]: {context,
    statement, lang} -> {nli_label, explanation} (or the label alone).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

_REPO = "Le-Wi-Di/le-wi-di.github.io"
_COMMIT = "45d7b06e4c36b59472d6bdf9281f7f1e395eb0e0"
_CODABENCH = "https://www.codabench.org/competitions/7192/"


def _raw(dataset: str, name: str) -> RawFile:
  path = f"LeWiDi_3-2025/{dataset}/{name}"
  url = f"https://raw.githubusercontent.com/{_REPO}/{_COMMIT}/{path}"
  return RawFile(path=f"lewidi/{dataset}/{name}",
                 published_at=f"{_CODABENCH} (also {url})",
                 download=Download(target=f"lewidi/{dataset}/{name}", url=url))


CSC = (_raw("CSC", "CSC_train.json"), _raw("CSC", "CSC_annotators_meta.json"))
MP = (_raw("MP", "MP_train.json"), _raw("MP", "MP_annotators_meta.json"))
PAR = (_raw("Paraphrase", "Paraphrase_train.json"),
       _raw("Paraphrase", "Paraphrase_annotators_meta.json"))
VARIERRNLI = (_raw("VariErrNLI", "VariErrNLI_train.json"),
              _raw("VariErrNLI", "VariErrNLI_annotators_meta.json"))

# Metadata values that mean "unknown"; the release prints them
# ("Gender: nan; Age: nan", "Age: DATA_EXPIRED"). We leave them out, as it
# leaves out empty values (docs/method.md#lewidi).
_NO_VALUE = frozenset({"nan", "NaN", "None", "null", "DATA_EXPIRED"})

CSC_DESCRIPTION = ("Given a conversational context and response, rate how "
                   "sarcastic the response is on a 1-6 scale.")
MP_DESCRIPTION = (
    "Given a post-reply pair from social media (Twitter/Reddit), determine "
    "whether the reply is ironic given the post. Context includes platform "
    "source, reply depth level, language variety, and language code. Binary "
    "irony detection task.")
PAR_DESCRIPTION = (
    "Given a pair of questions from Quora Question Pairs (QQP), assign a "
    "Likert scale score from -5 to 5 indicating how strongly the questions "
    "are paraphrases of one another, and provide a short explanation for "
    "your score.")
PAR_CATEGORICAL_DESCRIPTION = (
    "Given a pair of questions from Quora Question Pairs (QQP), assign a "
    "Likert scale score from -5 to 5 indicating how strongly the questions "
    "are paraphrases of one another.")
NLI_DESCRIPTION = (
    "Given a premise and hypothesis from MNLI corpus, assign one or more "
    "labels from {Entailment, Neutral, Contradiction} indicating the logical "
    "relationship between them, and provide an explanation for your "
    "reasoning.")
NLI_CATEGORICAL_DESCRIPTION = (
    "Given a premise and hypothesis from MNLI corpus, assign one or more "
    "labels from {entailment, neutral, contradiction} indicating the logical "
    "relationship between them.")


# ---------------------------------------------------------------- reading


def _strip_trailing_commas(text: str) -> str:
  """`text` without commas that directly precede a closing } or ].

  Commas inside strings are kept (the release's regex would also drop a
  ", }" inside a string; ours tracks quotes).
  """
  out = []
  in_string = escaped = False
  i, n = 0, len(text)
  while i < n:
    ch = text[i]
    if in_string:
      if escaped:
        escaped = False
      elif ch == "\\":
        escaped = True
      elif ch == '"':
        in_string = False
    elif ch == '"':
      in_string = True
    elif ch == ",":
      j = i + 1
      while j < n and text[j] in " \t\r\n":
        j += 1
      if j < n and text[j] in "}]":
        i += 1
        continue
    out.append(ch)
    i += 1
  return "".join(out)


def read_json(path: str) -> Any:
  """A JSON file, tolerating trailing commas; errors name file and line."""
  try:
    with open(path, encoding="utf-8-sig") as f:
      text = f.read()
  except UnicodeDecodeError as e:
    raise ValueError(f"{path}: not UTF-8 text ({e}).") from e
  try:
    return json.loads(text)
  except json.JSONDecodeError:
    pass
  # Only commas are removed, never newlines, so line numbers still match.
  try:
    return json.loads(_strip_trailing_commas(text))
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}, line {e.lineno}: not valid JSON ({e.msg}).") \
        from e


def _field(path: str, item: str, obj: Any, *keys: str) -> Any:
  """obj[keys[0]][keys[1]]..., or an error naming file, item and field."""
  for depth, key in enumerate(keys):
    if not isinstance(obj, dict) or key not in obj:
      raise _common.bad_value(path, f"item {item!r}", ".".join(keys[:depth + 1]),
                              "missing")
    obj = obj[key]
  return obj


def _annotations(path: str, data: Any, text_fields: dict[str, str],
                 extra: Callable[[str, dict], dict[str, Any]] | None = None,
                 ) -> list[dict[str, Any]]:
  """One record per (item, listed annotator) with an annotation.

  The annotators string may list an annotator twice (VariErrNLI: one entry
  per label of a multi-label answer); each listing is one record, with the
  explanation at the same position of other_info.explanations.

  Args:
    text_fields: record name -> key under the item's "text".
    extra: more fields from the item (e.g. MP's other_info).
  """
  if not isinstance(data, dict):
    raise ValueError(f"{path}: expected a JSON object of items, got "
                     f"{type(data).__name__}.")
  records = []
  for item, entry in data.items():
    texts = {name: _field(path, item, entry, "text", key)
             for name, key in text_fields.items()}
    listed = _field(path, item, entry, "annotators")
    annotations = _field(path, item, entry, "annotations")
    if not isinstance(listed, str):
      raise _common.bad_value(path, f"item {item!r}", "annotators",
                              f"expected a comma-separated string, got "
                              f"{listed!r}")
    if not isinstance(annotations, dict):
      raise _common.bad_value(path, f"item {item!r}", "annotations",
                              f"expected an object, got {annotations!r}")
    other = entry.get("other_info") or {}
    explanations = other.get("explanations", []) if isinstance(other, dict) \
        else []
    more = extra(item, entry) if extra else {}
    for position, annotator in enumerate(listed.split(",")):
      annotator = annotator.strip()
      if annotator not in annotations:
        continue
      explanation = (explanations[position]
                     if position < len(explanations) else "")
      if not isinstance(explanation, str):
        raise _common.bad_value(
            path, f"item {item!r}", f"other_info.explanations[{position}]",
            f"expected a string, got {explanation!r}")
      records.append({"item": item, "annotator": annotator, **texts,
                      "lang": entry.get("lang", ""), **more,
                      "label": annotations[annotator],
                      "explanation": explanation.strip()})
  return records


def _demographics(meta: Any, annotator: str, meta_key: str,
                  id_first: bool) -> str | None:
  """`field: value; ...` for one annotator, or None when it has no entry.

  As in the release: every non-empty metadata field in file order, then
  `annotator_id: <meta key>`. With `id_first` (Paraphrase) the id comes
  first instead; the release writes it first *and* last there, which we
  take for an accident (docs/method.md#lewidi).
  """
  entry = meta.get(meta_key) if isinstance(meta, dict) else None
  if not isinstance(entry, dict):
    return None
  parts = [f"{field}: {value}" for field, value in entry.items()
           if field != "annotator_id" and value
           and str(value).strip() not in _NO_VALUE]
  tag = f"annotator_id: {meta_key}"
  parts = [tag, *parts] if id_first else [*parts, tag]
  return "; ".join(parts)


def _by_annotator(records: list[dict[str, Any]], meta: Any, description: str,
                  given: tuple[str, ...], output: Callable[[dict], str],
                  meta_key: Callable[[str], str] = lambda a: a,
                  id_first: bool = False,
                  unique_items: bool = False) -> Iterator[Instance]:
  """One instance per annotator, in order of first appearance."""
  rows: dict[str, list[Row]] = {}
  seen: set[tuple[str, str]] = set()
  for rec in records:
    if unique_items:
      # A multi-label VariErrNLI answer lists its annotator once per label,
      # each time with the same label set; for the label-only task that
      # would count the answer twice (docs/method.md#lewidi).
      key = (rec["item"], rec["annotator"])
      if key in seen:
        continue
      seen.add(key)
    rows.setdefault(rec["annotator"], []).append(
        Row(input=serialise_fields({v: rec[v] for v in given}),
            output=output(rec)))
  for annotator, annotator_rows in rows.items():
    demographics = _demographics(meta, annotator, meta_key(annotator),
                                 id_first)
    # An annotator without metadata gets the task sentence alone, not the
    # release's "Annotator demographics: " with nothing after it.
    text = (description if demographics is None else
            f"{description}\nAnnotator demographics: {demographics}")
    yield Instance(id=annotator, rows=annotator_rows, descriptions=[text])


def _load(task: str, ctx: BuildContext, files: tuple[RawFile, RawFile]):
  data_path, meta_path = _common.raw_paths(task, ctx, files)
  return data_path, read_json(data_path), read_json(meta_path)


# ---------------------------------------------------------------- tasks


def generate_csc(ctx: BuildContext) -> Iterator[Instance]:
  task = "lewidi_csc_sarcasm_detection_individual"
  path, data, meta = _load(task, ctx, CSC)
  records = _annotations(path, data, {"context": "context",
                                      "response": "response"})
  return _by_annotator(records, meta, CSC_DESCRIPTION,
                       ("context", "response", "lang"),
                       lambda r: str(r["label"]))


def _mp_context(path: str):
  def extra(item: str, entry: dict) -> dict[str, Any]:
    other = entry.get("other_info") or {}
    if not isinstance(other, dict):
      raise _common.bad_value(path, f"item {item!r}", "other_info",
                              f"expected an object, got {other!r}")
    # level is a float in the file (1.0); the release prints str(level).
    return {"source": other.get("source", ""),
            "level": str(other.get("level", "")),
            "language_variety": other.get("language_variety", "")}
  return extra


def _mp_meta_key(annotator: str) -> str:
  # MP's metadata is keyed by the bare number ("0"), its items by "Ann0".
  return annotator[3:] if annotator.startswith("Ann") else annotator


def generate_mp(ctx: BuildContext) -> Iterator[Instance]:
  task = "lewidi_mp_irony_detection_individual"
  path, data, meta = _load(task, ctx, MP)
  records = _annotations(path, data, {"post": "post", "reply": "reply"},
                         _mp_context(path))
  return _by_annotator(records, meta, MP_DESCRIPTION,
                       ("post", "reply", "source", "level",
                        "language_variety", "lang"),
                       lambda r: str(r["label"]), meta_key=_mp_meta_key)


def _par_records(task: str, ctx: BuildContext):
  path, data, meta = _load(task, ctx, PAR)
  records = _annotations(path, data, {"question1": "Question1",
                                      "question2": "Question2"})
  for rec in records:
    try:
      rec["rating"] = int(str(rec["label"]).strip())
    except ValueError:
      raise _common.bad_value(
          path, f"item {rec['item']!r}", f"annotations.{rec['annotator']}",
          f"expected an integer rating -5..5, got {rec['label']!r}") from None
  return records, meta


def generate_par(ctx: BuildContext) -> Iterator[Instance]:
  records, meta = _par_records("lewidi_par_paraphrase_detection_individual",
                               ctx)
  return _by_annotator(
      records, meta, PAR_DESCRIPTION, ("question1", "question2", "lang"),
      lambda r: serialise_fields({"paraphrase_rating": r["rating"],
                                  "explanation": r["explanation"]}),
      id_first=True)


def generate_par_categorical(ctx: BuildContext) -> Iterator[Instance]:
  records, meta = _par_records(
      "lewidi_par_paraphrase_detection_individual_categorical", ctx)
  return _by_annotator(records, meta, PAR_CATEGORICAL_DESCRIPTION,
                       ("question1", "question2", "lang"),
                       lambda r: str(r["rating"]), id_first=True,
                       unique_items=True)


def _nli_records(task: str, ctx: BuildContext):
  path, data, meta = _load(task, ctx, VARIERRNLI)
  return _annotations(path, data, {"context": "context",
                                   "statement": "statement"}), meta


def generate_nli(ctx: BuildContext) -> Iterator[Instance]:
  records, meta = _nli_records("lewidi_varierrnli_nli_detection_individual",
                               ctx)
  # Each listing of an annotator keeps its own explanation, as in the
  # release, so a two-label answer gives two rows with different reasons.
  return _by_annotator(
      records, meta, NLI_DESCRIPTION, ("context", "statement", "lang"),
      lambda r: serialise_fields({"nli_label": r["label"],
                                  "explanation": r["explanation"]}))


def generate_nli_categorical(ctx: BuildContext) -> Iterator[Instance]:
  records, meta = _nli_records(
      "lewidi_varierrnli_nli_detection_individual_categorical", ctx)
  return _by_annotator(records, meta, NLI_CATEGORICAL_DESCRIPTION,
                       ("context", "statement", "lang"),
                       lambda r: str(r["label"]), unique_items=True)


_ABOUT = "LeWiDi 2025 {}: one annotator's {} with their demographics."

TASKS = [
    # n_per=1, n_iter=1000: one episode of (up to) 1000 of the annotator's
    # rows.
    TaskSpec(name="lewidi_csc_sarcasm_detection_individual",
             suite_split="train", kind="icl", generate=generate_csc,
             fixed_k=1000, raw_files=CSC,
             about=_ABOUT.format("CSC", "1-6 sarcasm ratings of replies")),
    TaskSpec(name="lewidi_mp_irony_detection_individual",
             suite_split="train", kind="icl", generate=generate_mp,
             fixed_k=1000, raw_files=MP,
             about=_ABOUT.format("MultiPICo", "0/1 irony labels of "
                                 "social-media replies")),
    # n_per=-1, n_iter=20 / 30: all rows, in chunks of 20 / 30.
    TaskSpec(name="lewidi_par_paraphrase_detection_individual",
             suite_split="train", kind="icl", generate=generate_par,
             fixed_k=20, chunk_all_rows=True, raw_files=PAR,
             about=_ABOUT.format("Paraphrase", "-5..5 paraphrase ratings "
                                 "and explanations")),
    TaskSpec(name="lewidi_par_paraphrase_detection_individual_categorical",
             suite_split="train", kind="icl",
             generate=generate_par_categorical, fixed_k=20,
             chunk_all_rows=True, raw_files=PAR,
             about=_ABOUT.format("Paraphrase", "-5..5 paraphrase ratings")),
    TaskSpec(name="lewidi_varierrnli_nli_detection_individual",
             suite_split="train", kind="icl", generate=generate_nli,
             fixed_k=30, chunk_all_rows=True, raw_files=VARIERRNLI,
             about=_ABOUT.format("VariErrNLI", "NLI labels and "
                                 "explanations")),
    TaskSpec(name="lewidi_varierrnli_nli_detection_individual_categorical",
             suite_split="train", kind="icl",
             generate=generate_nli_categorical, fixed_k=30,
             chunk_all_rows=True, raw_files=VARIERRNLI,
             about=_ABOUT.format("VariErrNLI", "NLI labels")),
]
