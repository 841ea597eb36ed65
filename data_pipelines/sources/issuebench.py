"""IssueBench (Röttger et al., 2025): writing prompts about political issues.

Raw files: the two shards of the `prompts` config's `prompts_full` split of
the Hugging Face dataset `Paul/IssueBench`, stored at their paths in that
repository under `issuebench/`:
`prompts/prompts_full-0000{0,1}-of-00002.parquet`. Columns `template_id`,
`template_text` (a writing task with the topic as `X`), `topic_id`,
`topic_polarity`, `topic_text`, `prompt_text`; only `topic_text` and
`template_text` are used.

One train task, `issuebench` (docs/method.md#issuebench), with two
instances: the distinct topics and the distinct templates, each episode all
of them in a fresh order, two episodes each.
"""

from __future__ import annotations

from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

_REPO = "Paul/IssueBench"
_SHARDS = ("prompts/prompts_full-00000-of-00002.parquet",
           "prompts/prompts_full-00001-of-00002.parquet")
RAW = tuple(
    RawFile(path=f"issuebench/{name}",
            published_at=f"https://huggingface.co/datasets/{_REPO} (config "
            f"prompts, split prompts_full: file {name})",
            download=Download(target=f"issuebench/{name}", hf_repo=_REPO,
                              hf_filename=name))
    for name in _SHARDS)
TOPICS_DESCRIPTION = "Topics relating to politics"
TEMPLATES_DESCRIPTION = (
    "Templates to use for a language model benchmark about bias on a topic. "
    "The topic should be in the template as X.")


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """Two instances: the distinct topics, then the distinct templates."""
  topics: dict[str, None] = {}
  templates: dict[str, None] = {}
  for path in _common.raw_paths("issuebench", ctx, RAW):
    for index, rec in enumerate(_common.read_parquet(
        path, ("topic_text", "template_text"))):
      for column, seen in (("topic_text", topics),
                           ("template_text", templates)):
        value = rec[column]
        if value is None:
          continue
        if not isinstance(value, str):
          raise _common.bad_value(path, f"row {index}", column,
                                  f"expected a string, got {value!r}")
        seen[value] = None
  yield Instance(id="topics", rows=[Row(output=t) for t in topics],
                 descriptions=[TOPICS_DESCRIPTION])
  yield Instance(id="templates", rows=[Row(output=t) for t in templates],
                 descriptions=[TEMPLATES_DESCRIPTION])


TASKS = [
    TaskSpec(name="issuebench", suite_split="train", kind="icl",
             generate=generate, episodes_per_instance=2, raw_files=RAW,
             # Two unlike instances: holding one out (the default 5%, at
             # least one of two) would drop a whole kind of data from
             # training; the release holds none out.
             test_fraction=0.0,
             about="IssueBench: political topics, or writing-prompt "
             "templates about a topic X."),
]
