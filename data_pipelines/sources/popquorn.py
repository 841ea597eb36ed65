"""POPQUORN (Pei & Jurgens, 2023): annotations with the annotator's demographics.

Raw files, from github Jiaxin-Pei/Potato-Prolific-Dataset (dataset/), under
`popquorn/<subtask>/raw_data.csv`; every file has `user_id` and the
demographic columns `gender`, `race`, `age`, `occupation`, `education`:
  email_rewriting: `original email`, `revised email` (some rows have no
    user_id; they are skipped).
  offensiveness: `text`, `offensiveness` (1-5, may be written 1.0).
  politeness_rating: `text`, `politeness` (1-5).
  question_answering: `text` (the passage), `question`, `groundtruth`,
    `answer`, `difficulty` (1-5). Its user_id is empty, so a user is the
    demographic profile, as in the release.

Two train tasks (docs/method.md#popquorn):
  popquorn_individual: per subtask up to 100 annotators with more than 5
    rows; all of an annotator's rows in one episode; descriptions as the
    release's, some stating the annotator's demographics.
  popquorn_og_categorical: per subtask the distinct texts (outputs only);
    20 episodes of k ~ GP(128) each.
"""

from __future__ import annotations

from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

REPO = "Jiaxin-Pei/Potato-Prolific-Dataset"
COMMIT = "dbb118c29b3d9bcce5aa172d8249ded9ece4df84"
SUBTASKS = ("email_rewriting", "offensiveness", "politeness_rating",
            "question_answering")
DEMOGRAPHICS = ("gender", "race", "age", "occupation", "education")
MIN_ROWS = 6  # the release keeps annotators with more than 5 rows
MAX_USERS = 100  # per subtask
OG_EPISODES = 20  # popquorn_og_categorical: n_per=20


def _raw(subtask: str) -> RawFile:
  url = (f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/dataset/"
         f"{subtask}/raw_data.csv")
  return RawFile(path=f"popquorn/{subtask}/raw_data.csv", published_at=url,
                 download=Download(target=f"popquorn/{subtask}/raw_data.csv",
                                   url=url))


RAW_FILES = tuple(_raw(s) for s in SUBTASKS)

_SHOWN = "\nIndividual demographics: "
_EMAIL_TASK = ("The following are rewrites to make the email more polite and "
               "professional, all from the same individual.")
_QA = ('Answer the question by copying the answer from the passage, or '
       'respond with "No answer" if the question is not answered in the '
       'passage.\nBased on the passage and the question, give first the '
       'ground truth answer, then the answer that the user gave, and finally '
       "the user's difficulty rating of the question. (1-5)")
# Per subtask: (descriptions without demographics, descriptions that end in
# _SHOWN + the demographics), in the release's order (QA lists the
# demographic one first).
DESCRIPTIONS = {
    "email_rewriting": (
        ("Your collegue is trying to draft an email and is asking for your "
         "help. Please help to rewrite the message to make it more polite and "
         "professional.", _EMAIL_TASK),
        (_EMAIL_TASK,)),
    "offensiveness": (
        ("Consider you read the above comment on Reddit, how offensive do you "
         "think it is? (1-5)",),
        ("The following is a message that a user read. Please rate the "
         "message on a scale of 1 to 5, where 1 is not offensive and 5 is "
         "very offensive.",)),
    "politeness_rating": (
        ('Consider you read this email from a colleague, how polite do you '
         'think it is? (1-5), where 1 is "Not polite at all" and 5 is "Very '
         'polite"',),
        ("The following is an email that a user read. Please rate the email "
         "on a scale of 1 to 5, where 1 is not polite and 5 is very polite.",)),
    "question_answering": ((_QA,), (_QA,)),
}
SAMPLE_COLUMN = {"email_rewriting": "original email",
                 "offensiveness": "text", "politeness_rating": "text",
                 "question_answering": "text"}


def _rating(path: str, line: int, column: str, text: str) -> str:
  """A 1-5 rating cell ("3" or "3.0") as the release prints it: "3"."""
  try:
    value = float(text)
  except ValueError:
    value = None
  if value is None or not value.is_integer():
    raise _common.bad_value(path, f"line {line}", column,
                            f"expected a whole-number rating, got {text!r}")
  return str(int(value))


def _row(subtask: str, path: str, line: int,
         rec: dict[str, str]) -> Row | None:
  """The release's example for one annotation; None if a field is blank.

  The release would print a blank cell as nan (or NaN inside JSON); such rows
  are dropped instead (docs/method.md#popquorn).
  """
  def blank(*columns: str) -> bool:
    return any(rec[c].strip() in _common.MISSING for c in columns)

  if subtask == "email_rewriting":
    if blank("original email", "revised email"):
      return None
    return Row(input=rec["original email"].strip(),
               output=rec["revised email"].strip())
  if subtask in ("offensiveness", "politeness_rating"):
    score = "offensiveness" if subtask == "offensiveness" else "politeness"
    if blank("text", score):
      return None
    return Row(input=rec["text"].strip(),
               output=_rating(path, line, score, rec[score].strip()))
  if blank("text", "question", "groundtruth", "answer", "difficulty"):
    return None
  # As the release: the passage is stripped, the other fields are not.
  return Row(
      input=serialise_fields({"passage": rec["text"].strip(),
                              "question": rec["question"]}),
      output=serialise_fields({
          "groundtruth": rec["groundtruth"], "answer": rec["answer"],
          "difficulty": _rating(path, line, "difficulty",
                                rec["difficulty"].strip())}))


_COLUMNS = {
    "email_rewriting": ("original email", "revised email"),
    "offensiveness": ("text", "offensiveness"),
    "politeness_rating": ("text", "politeness"),
    "question_answering": ("text", "question", "groundtruth", "answer",
                           "difficulty"),
}


def _user(subtask: str, rec: dict[str, str]) -> str | None:
  if subtask != "question_answering":
    return rec["user_id"].strip() or None
  # The QA file has no user ids: the release keys users by their profile,
  # which is missing (so the row unused) if any attribute is blank.
  values = [rec[c] for c in DEMOGRAPHICS]
  if any(v.strip() in _common.MISSING for v in values):
    return None
  return "_".join(values)


def _descriptions(subtask: str, first: dict[str, str]) -> list[str]:
  """The subtask's descriptions for one annotator (first row's profile).

  Blank attributes are left out of the shown profile, and the descriptions
  that show it are left out when every attribute is blank (every email
  annotator): the release would show {'gender': nan, ...}
  (docs/method.md#popquorn).
  """
  plain, shown = DESCRIPTIONS[subtask]
  profile = {c: first[c] for c in DEMOGRAPHICS
             if first[c].strip() not in _common.MISSING}
  with_profile = [d + _SHOWN + str(profile) for d in shown] if profile else []
  if subtask == "question_answering":
    return with_profile + list(plain)
  return list(plain) + with_profile


def generate_individual(ctx: BuildContext) -> Iterator[Instance]:
  task = "popquorn_individual"
  paths = _common.raw_paths(task, ctx, RAW_FILES)
  for subtask, path in zip(SUBTASKS, paths):
    users: dict[str, tuple[dict[str, str], list[Row]]] = {}
    for line, rec in _common.read_csv(
        path, ("user_id", *DEMOGRAPHICS, *_COLUMNS[subtask])):
      user = _user(subtask, rec)
      if user is None:
        continue
      row = _row(subtask, path, line, rec)
      if row is not None:
        users.setdefault(user, (rec, []))[1].append(row)
    eligible = [u for u, (_, rows) in users.items() if len(rows) >= MIN_ROWS]
    if len(eligible) > MAX_USERS:
      # The release takes the first MAX_USERS of a seeded shuffle; a seeded
      # sample kept in file order is the same draw.
      keep = set(_common.seeded_rng(ctx, task, subtask).sample(eligible,
                                                               MAX_USERS))
      eligible = [u for u in eligible if u in keep]
    for user in eligible:
      first, rows = users[user]
      yield Instance(id=f"{subtask}/{user}", rows=rows,
                     descriptions=_descriptions(subtask, first))


def generate_og_categorical(ctx: BuildContext) -> Iterator[Instance]:
  paths = _common.raw_paths("popquorn_og_categorical", ctx, RAW_FILES)
  for subtask, path in zip(SUBTASKS, paths):
    column = SAMPLE_COLUMN[subtask]
    texts: dict[str, None] = {}
    for _, rec in _common.read_csv(path, (column,)):
      text = rec[column].strip()
      if text not in _common.MISSING:
        texts.setdefault(text, None)
    if texts:
      yield Instance(
          id=subtask, rows=[Row(output=t) for t in texts],
          descriptions=[f"Data to use as samples for this task: {subtask}"])


TASKS = [
    TaskSpec(name="popquorn_individual", suite_split="train", kind="icl",
             generate=generate_individual, raw_files=RAW_FILES,
             about="POPQUORN: one annotator's email rewrites, offensiveness "
             "or politeness ratings, or reading-comprehension answers."),
    TaskSpec(name="popquorn_og_categorical", suite_split="train", kind="icl",
             generate=generate_og_categorical, mean_k=128,
             episodes_per_instance=OG_EPISODES, raw_files=RAW_FILES,
             about="POPQUORN: the texts annotated in one subtask."),
]
