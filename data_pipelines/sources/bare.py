"""BARE (Zhu et al., 2025): synthetic data from base-then-refine generation.

Raw files: the sample generations in github pgasawa/BARE, one JSON-lines file
per data set under `bare/sample_generated_data/<name>/` (the file names
below are the ones the release reads). Each line is one generated example:
  gsm8k, lcb: `question`, `answer`;
  enron: `spam` (the label, printed with `str`), `email`;
  hotpot, pubmed: `context`, `question`, `answer`;
  newsgroups: `newsgroup`, `message`.
Every field a task uses must be present; text fields must be strings.

Six train tasks (docs/method.md#task-list): bare_gsm8k, bare_enron,
bare_hotpot, bare_lcb, newsgroups, pubmed. Each has four instances over all
of the file's examples, as the release's four generators per data set:
joint generation (no input), X -> Y, Y -> X, and one field alone; each
instance carries its three descriptions. Release: every row once per pass,
in chunks of GP(32), at most 500 episodes per generator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

_REPO = "https://github.com/pgasawa/BARE"
_DIR = "bare/sample_generated_data"
MEAN_K = 32
MAX_EPISODES_PER_VARIANT = 500  # the release's max_total per generator






class _Variant(NamedTuple):
  id: str  # the release's generator name
  given: tuple[str, ...]
  gen: tuple[str, ...]
  descriptions: tuple[str, ...]


class _Source(NamedTuple):
  task: str
  name: str  # the directory under bare/sample_generated_data
  file: str
  about: str
  as_text: tuple[str, ...]  # printed with str(), the release's astype(str)
  variants: tuple[_Variant, ...]

  @property
  def raw(self) -> RawFile:
    path = f"{_DIR}/{self.name}/{self.file}"
    return RawFile(
        path=f"bare/{self.name}/{self.file}",
        published_at=f"{_REPO} ({path})",
        # The stored snapshots of the repository (to July 2025) do not yet
        # hold sample_generated_data, so there is no commit to pin a URL to.
        download=Download(
            target=f"bare/{self.name}/{self.file}",
            manual=f"Clone {_REPO} (git clone {_REPO}.git) and copy "
            f"{path} to <raw_dir>/bare/{self.name}/{self.file}."))


SOURCES = (
    _Source(
        task="bare_gsm8k", name="gsm8k",
        file="gsm8k_gpt_4o_refine_llama_70b_base_n=1000.jsonl",
        about="grade-school math word problems and worked solutions",
        as_text=(),
        variants=(
        _Variant("gsm8k_question_answer",
                 (), ("question", "answer"), (
            "Generate both a math word problem (question) and its "
            "step-by-step solution (answer). These are synthetic grade "
            "school math problems covering arithmetic, basic algebra, and "
            "word problem reasoning.",
            "Synthetic math word problems with worked solutions. Generate "
            "both the question and answer components separately.",
            "Create complete math problem pairs: generate both the word "
            "problem statement and its detailed solution with calculations.",
        )),
        _Variant("gsm8k_answer_from_question",
                 ("question",), ("answer",), (
            "Given a math word problem, generate its step-by-step solution "
            "with calculations and reasoning.",
            "Solve grade school math word problems by providing detailed "
            "worked solutions.",
            "Given: question (math word problem). Generate: answer "
            "(step-by-step solution with final numerical answer).",
        )),
        _Variant("gsm8k_question_from_answer",
                 ("answer",), ("question",), (
            "Given a step-by-step math solution, generate a word problem "
            "that would lead to this solution.",
            "Create math word problems that match the given worked solution"
            " and final answer.",
            "Given: answer (step-by-step solution). Generate: question "
            "(word problem that leads to this solution).",
        )),
        _Variant("gsm8k_question",
                 (), ("question",), (
            "Generate math word problems suitable for grade school "
            "students, covering arithmetic and basic algebra.",
            "Create diverse math word problems involving real-world "
            "scenarios and numerical reasoning.",
            "Generate: question (math word problem statement only, without "
            "solution).",
        )),
        )),
    _Source(
        task="bare_enron", name="enron",
        file="enron_gpt_4o_refine_llama_70b_base_n=500.jsonl",
        about="emails with a spam label",
        as_text=("spam",),
        variants=(
        _Variant("enron_spam_email",
                 (), ("spam", "email"), (
            "Generate both an email message and its spam classification "
            "(true/false). These are synthetic emails based on the Enron "
            "dataset.",
            "Create complete email examples: generate both the email "
            "content and whether it should be classified as spam.",
            "Generate: spam (boolean), email (message content). Synthetic "
            "email classification dataset.",
        )),
        _Variant("enron_spam_from_email",
                 ("email",), ("spam",), (
            "Given an email message, classify whether it is spam (true) or "
            "not spam (false).",
            "Email spam classification: determine if the given email "
            "content should be marked as spam.",
            "Given: email (message content). Generate: spam (boolean "
            "classification).",
        )),
        _Variant("enron_email_from_spam",
                 ("spam",), ("email",), (
            "Given a spam classification (true/false), generate an email "
            "message that matches that classification.",
            "Create email content that corresponds to the specified "
            "spam/not-spam label.",
            "Given: spam (boolean). Generate: email (message content that "
            "matches the spam classification).",
        )),
        _Variant("enron_email",
                 (), ("email",), (
            "Generate email messages in the style of business/corporate "
            "communications from the Enron dataset.",
            "Create realistic email content covering business "
            "communications, meeting notes, and corporate correspondence.",
            "Generate: email (message content only). Synthetic emails based"
            " on business communications.",
        )),
        )),
    _Source(
        task="bare_hotpot", name="hotpot",
        file="hotpot_gpt_4o_refine_llama_70b_base_n=1000.jsonl",
        about="multi-hop reading-comprehension context, question and answer",
        as_text=(),
        variants=(
        _Variant("hotpot_context_question_answer",
                 (), ("context", "question", "answer"), (
            "Generate complete reading comprehension examples: context "
            "passage, question, and answer. These are synthetic multi-hop "
            "reasoning questions requiring information from multiple "
            "sources.",
            "Create HotpotQA-style reading comprehension: generate context "
            "(background information), question (multi-hop reasoning), and "
            "answer (with supporting evidence).",
            "Generate: context (multi-paragraph background), question "
            "(complex reasoning), answer (with evidence citations). "
            "Multi-hop QA dataset.",
        )),
        _Variant("hotpot_answer_from_context_question",
                 ("context", "question"), ("answer",), (
            "Given a context passage and question, provide the answer with "
            "supporting evidence from the text.",
            "Reading comprehension: answer multi-hop reasoning questions "
            "using information from the provided context.",
            "Given: context (background passage), question (multi-hop "
            "reasoning). Generate: answer (with evidence citations).",
        )),
        _Variant("hotpot_question_from_context_answer",
                 ("context", "answer"), ("question",), (
            "Given a context passage and an answer, generate a multi-hop "
            "reasoning question that leads to this answer.",
            "Create complex questions that require multi-hop reasoning "
            "across the context to arrive at the given answer.",
            "Given: context (background passage), answer (with evidence). "
            "Generate: question (multi-hop reasoning that leads to this "
            "answer).",
        )),
        _Variant("hotpot_context",
                 (), ("context",), (
            "Generate multi-paragraph context passages suitable for complex"
            " reading comprehension questions.",
            "Create background information passages that contain "
            "interconnected facts for multi-hop reasoning tasks.",
            "Generate: context (multi-paragraph background with "
            "interconnected information for complex QA).",
        )),
        )),
    _Source(
        task="bare_lcb", name="lcb",
        file="lcb_gpt_4o_refine_70b_base_n=1000.jsonl",
        about="programming/logic problems and solutions",
        as_text=(),
        variants=(
        _Variant("lcb_question_answer",
                 (), ("question", "answer"), (
            "Generate both logic and commonsense reasoning problems with "
            "their solutions. These cover algorithms, data structures, and "
            "logical reasoning.",
            "Create complete programming/logic problems: generate both the "
            "problem statement and step-by-step solution with reasoning.",
            "Generate: question (logic/programming problem), answer "
            "(detailed solution with reasoning). LCB benchmark problems.",
        )),
        _Variant("lcb_answer_from_question",
                 ("question",), ("answer",), (
            "Given a logic or programming problem, provide a step-by-step "
            "solution with clear reasoning.",
            "Solve logic and commonsense reasoning problems by providing "
            "detailed explanations and final answers.",
            "Given: question (logic/programming problem). Generate: answer "
            "(step-by-step solution with reasoning and final result).",
        )),
        _Variant("lcb_question_from_answer",
                 ("answer",), ("question",), (
            "Given a detailed solution, generate a logic or programming "
            "problem that would lead to this solution.",
            "Create logic/programming problems that match the given "
            "step-by-step solution and reasoning.",
            "Given: answer (detailed solution with reasoning). Generate: "
            "question (logic/programming problem that leads to this "
            "solution).",
        )),
        _Variant("lcb_question",
                 (), ("question",), (
            "Generate logic and commonsense reasoning problems covering "
            "algorithms, data structures, and programming concepts.",
            "Create diverse programming and logic problems suitable for "
            "technical assessment and reasoning evaluation.",
            "Generate: question (logic/programming problem statement only, "
            "without solution).",
        )),
        )),
    _Source(
        task="newsgroups", name="newsgroups",
        file="newsgroups_gpt_4o_refine_llama_70b_base_n=500.jsonl",
        about="newsgroup posts with their newsgroup",
        as_text=(),
        variants=(
        _Variant("newsgroups_newsgroup_message",
                 (), ("newsgroup", "message"), (
            "Generate both a newsgroup category and a message that belongs "
            "to that category. These are synthetic posts based on 20 "
            "Newsgroups dataset covering various topics.",
            "Create complete newsgroup posts: generate both the category "
            "(newsgroup) and the message content.",
            "Generate: newsgroup (category like sci.med, comp.graphics), "
            "message (post content). Text classification dataset.",
        )),
        _Variant("newsgroups_newsgroup_from_message",
                 ("message",), ("newsgroup",), (
            "Given a message post, classify it into the appropriate "
            "newsgroup category (e.g., sci.med, comp.graphics, "
            "talk.politics).",
            "Text classification: determine which newsgroup category best "
            "fits the given message content.",
            "Given: message (post content). Generate: newsgroup (category "
            "classification).",
        )),
        _Variant("newsgroups_message_from_newsgroup",
                 ("newsgroup",), ("message",), (
            "Given a newsgroup category, generate a message that would be "
            "appropriate for that category.",
            "Create message content that fits the specified newsgroup topic"
            " (e.g., medical discussions for sci.med, graphics questions "
            "for comp.graphics).",
            "Given: newsgroup (category). Generate: message (post content "
            "appropriate for that category).",
        )),
        _Variant("newsgroups_message",
                 (), ("message",), (
            "Generate newsgroup message posts covering diverse topics like "
            "science, technology, politics, and recreation.",
            "Create message content in the style of online forum "
            "discussions and newsgroup posts.",
            "Generate: message (newsgroup post content only). Diverse "
            "online discussion posts.",
        )),
        )),
    _Source(
        task="pubmed", name="pubmed",
        file="pubmed_gpt_4o_refine_llama_70b_base_n=1000.jsonl",
        about="biomedical context, question and answer",
        as_text=(),
        variants=(
        _Variant("pubmed_context_question_answer",
                 (), ("context", "question", "answer"), (
            "Generate complete biomedical QA examples: context (medical "
            "research), question (clinical/research question), and answer "
            "(evidence-based response). These are synthetic medical "
            "questions based on PubMed literature.",
            "Create PubMed-style biomedical QA: generate context (research "
            "abstracts), question (medical/scientific), and answer (with "
            "evidence citations).",
            "Generate: context (biomedical research text), question "
            "(clinical question), answer (evidence-based response). Medical"
            " QA dataset.",
        )),
        _Variant("pubmed_answer_from_context_question",
                 ("context", "question"), ("answer",), (
            "Given biomedical research context and a clinical question, "
            "provide an evidence-based answer with supporting citations.",
            "Biomedical QA: answer medical/scientific questions using "
            "information from the provided research context.",
            "Given: context (biomedical research), question "
            "(clinical/scientific). Generate: answer (evidence-based "
            "response with citations).",
        )),
        _Variant("pubmed_question_from_context_answer",
                 ("context", "answer"), ("question",), (
            "Given biomedical research context and an answer, generate a "
            "clinical or scientific question that leads to this answer.",
            "Create medical/scientific questions that can be answered using"
            " the provided research context and evidence.",
            "Given: context (biomedical research), answer (evidence-based "
            "response). Generate: question (clinical/scientific question "
            "that leads to this answer).",
        )),
        _Variant("pubmed_context",
                 (), ("context",), (
            "Generate biomedical research abstracts and clinical study "
            "summaries suitable for medical question answering.",
            "Create scientific literature context covering medical "
            "research, clinical studies, and biomedical findings.",
            "Generate: context (biomedical research text for medical QA "
            "tasks).",
        )),
        )),
)


def _examples(path: str, source: _Source) -> list[dict[str, Any]]:
  """The file's examples, each reduced to the fields the variants use."""
  fields = list(dict.fromkeys(
      f for v in source.variants for f in (*v.given, *v.gen)))
  out = []
  for line, rec in _common.read_jsonl(path):
    where = f"line {line}"
    if not isinstance(rec, dict):
      raise ValueError(f"{path}, {where}: expected a JSON object, got "
                       f"{type(rec).__name__}.")
    example = {}
    for field in fields:
      if field not in rec or rec[field] is None:
        raise _common.bad_value(path, where, field, "missing")
      value = rec[field]
      if field in source.as_text:
        example[field] = str(value)
      elif isinstance(value, str):
        example[field] = value
      else:
        raise _common.bad_value(path, where, field,
                                f"expected a string, got {value!r:.80}")
    out.append(example)
  return out


def _generator(source: _Source):
  def generate(ctx: BuildContext) -> Iterator[Instance]:
    (path,) = _common.raw_paths(source.task, ctx, (source.raw,))
    examples = _examples(path, source)
    for variant in source.variants:
      rows = [Row(input=(serialise_fields({f: ex[f] for f in variant.given})
                         if variant.given else None),
                  output=serialise_fields({f: ex[f] for f in variant.gen}))
              for ex in examples]
      yield Instance(id=variant.id, rows=rows,
                     descriptions=list(variant.descriptions))
  generate.__doc__ = (f"Four instances over {source.file}: "
                      + ", ".join(v.id for v in source.variants) + ".")
  return generate


TASKS = [
    TaskSpec(name=s.task, suite_split="train", kind="icl",
             generate=_generator(s), mean_k=MEAN_K, chunk_all_rows=True,
             # The release caps each of the four generators at 500 episodes;
             # a one-pass chunking of 1000 rows at GP(32) makes about 31, so
             # neither that cap nor this task-wide one binds.
             max_episodes=MAX_EPISODES_PER_VARIANT * len(s.variants),
             raw_files=(s.raw,),
             about=f"BARE synthetic {s.name}: {s.about} (four directions).")
    for s in SOURCES
]
