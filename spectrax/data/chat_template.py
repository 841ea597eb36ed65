"""The `chat` template: an instruct checkpoint's own chat template, for evaluation.

docs/method.md#chat-template in code. Instruct comparators (Gemma-it, Qwen3,
Llama-Instruct) are evaluated as the release evaluated them (its `--format
chat`, tsor13/spectrum@5a33588 src/spectrum/format_utils.py:237-392): an
episode's description, inputs and outputs become system / user / assistant
messages, which the tokenizer's own Jinja template (transformers'
`apply_chat_template`, read offline from the checkpoint directory) renders.

Message mapping (the release's `messages_to_chat_loss_texts`):

- The system message is a fixed prompt (`ChatPrompting.system_prompt`), then
  `"\\n\\n" + "Description: " + d`; without a description, the episode's
  inputs up to and including its first output are appended as
  `"\\n\\nExample Input: " + x` / `"\\n\\nExample Output: " + y` (that output
  is context, as the no-description rule of docs/method.md#loss-spans).
- After that, an input is a user message and an output an assistant message;
  in an episode without inputs, each assistant message is preceded by the
  user message `Generate`.
- A conversation of the system message alone gets an empty user message; a
  generation prompt after an assistant message first gets the user message
  `Generate.`.

Loss spans: each assistant turn's rendered content plus the template's
end-of-turn token, as every other template (docs/method.md#loss-spans).

How the text and spans are found (robust to any template; nothing is
guessed from a model name): every assistant turn is rendered as the model's
reply to the conversation so far — `render(conv[:j], add_generation_prompt=
True)` must be a prefix of `render(conv[:j + 1])`, and what follows it must
be the content, the end-of-turn token (an added token of the tokenizer) and
trailing context. The text between two turns is what the template puts after
the earlier turn's end-of-turn in the next generation prompt, located with a
sentinel in place of that turn's content. So a turn's text never depends on
later turns (the episode is prefix-stable by construction, as truncation and
the fixed-k cut need), and a template whose rendering cannot be split so
fails with a `ChatTemplateError` naming what did not match. Templates that
render a past assistant turn differently from the latest one (Qwen3 drops
the empty `<think>` block from history) keep each turn as the reply saw it,
which is what the release's Qwen3 string mapping produced.

Templates are rendered with `enable_thinking=False` (Qwen3's non-thinking
mode: the generation prompt ends with an empty think block, as the release's
mapping; other templates ignore the variable). A BOS string the template
renders first is removed when the tokenizer has a BOS, because every caller
adds the BOS id itself (the release removed Gemma's `<bos>` the same way).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

CHAT = "chat"

# tsor13/spectrum@5a33588 src/spectrum/format_utils.py:237-244 (`default_chat_prompt`).
ICL_SYSTEM_PROMPT = """You are tasked with generating outputs from a particular, potentially stochastic, generative process. You will be given some combination of:
- Description: A natural description of the generative process / data distribution
- Input: An input on which to condition the generative process.
- Example outputs: Example outputs from the process, either in a user message or as prior generations from a chat message. You may assume that any given outputs are exchangeable with one another (order-invariant) and generated from the same process (roughly i.i.d.). If the output data pertains to a single object, it just contains the output. If it contains multiple objects, use json formatting with keys for the name of the output variable.
You will be provided at least either a description or an example output.

Given these components, your job is to generate JUST the output in your response, roughly approximating the underlying generative process, maintaining any underlying stochasticity (if any is present). If you are asked to generate again, you will either be given an additional input to condition on, or will just be told to "Generate".
"""

_SENTINEL = "\u2063spectrax-chat-turn\u2063"
_TURN_USER = "Generate"        # format_utils.py:306
_FINAL_USER = "Generate."      # format_utils.py:265


class ChatTemplateError(ValueError):
  """A tokenizer without a usable chat template; the message says what failed."""


@dataclasses.dataclass(frozen=True)
class ChatPrompting:
  """The release's per-evaluation settings of its chat format.

  Attributes:
    system_prompt: the system message's opening text.
    description_prefix: put before the description in the system message.
    all_examples_in_prompt: every description, input and output goes into
      the system message, followed by one user request (the diversity
      prompts, eval_diverse_valid.py:84-89, format_utils.py:315-336).
  """

  system_prompt: str = ICL_SYSTEM_PROMPT
  description_prefix: str = "Description: "
  all_examples_in_prompt: bool = False


# Steerability, capabilities and spectrax.score: the release's defaults
# (eval_icl.py's `--format chat`). Distributional: eval_distributional.py:123-127.
# Diversity: eval_diverse_valid.py:84-89.
PROMPTINGS = {
    "icl": ChatPrompting(),
    "distributional": ChatPrompting(
        system_prompt="Given the description and an input, respond with just an output."),
    "diversity": ChatPrompting(
        system_prompt="Respond with JUST the requested output, nothing else.",
        description_prefix="", all_examples_in_prompt=True),
}


def to_chat(messages: Sequence[Any], prompting: ChatPrompting,
            add_generation_prompt: bool) -> tuple[list[dict[str, str]], list[tuple[int, int]]]:
  """The release's chat messages of an episode and its assistant turns.

  Args:
    messages: validated `episodes.Message`s.
    prompting: the system prompt and mapping options.
    add_generation_prompt: the conversation ends in a request for a reply.

  Returns:
    `(conversation, turns)`: `{"role", "content"}` dicts with roles system,
    user, assistant; and per assistant message `(conversation index, index
    of the episode's output message it renders)`.
  """
  delim = "\n\n"
  system = prompting.system_prompt
  conv: list[dict[str, str]] = []
  turns: list[tuple[int, int]] = []
  if prompting.all_examples_in_prompt:
    has_description = has_examples = False
    for m in messages:
      if m.role == "description":
        system += delim + prompting.description_prefix + m.content
        has_description = True
      elif m.role == "input":
        system += delim + "Example Input: " + m.content
        has_examples = True
      else:
        system += delim + "Example Output: " + m.content
        has_examples = True
    if has_description and has_examples:
      request = "Now generate an output based on the description and examples."
    elif has_description:
      request = "Generate something that fits this description."
    elif has_examples:
      request = "Generate an output like the provided examples."
    else:
      raise ChatTemplateError("an episode with neither a description nor an example has "
                              "nothing to prompt the chat template with")
    conv = [{"role": "system", "content": system.strip()},
            {"role": "user", "content": request}]
  else:
    opened = has_input = False
    for i, m in enumerate(messages):
      if m.role == "description":
        system += delim + prompting.description_prefix + m.content
        if system.strip():
          conv.append({"role": "system", "content": system.strip()})
        opened = True
      elif m.role == "input":
        has_input = True
        if opened:
          conv.append({"role": "user", "content": m.content})
        else:
          system += delim + "Example Input: " + m.content
      elif not opened:
        system += delim + "Example Output: " + m.content
        if system.strip():
          conv.append({"role": "system", "content": system.strip()})
        opened = True
      else:
        if not has_input:
          conv.append({"role": "user", "content": _TURN_USER})
        conv.append({"role": "assistant", "content": m.content})
        turns.append((len(conv) - 1, i))
  if not conv:
    conv = [{"role": "system", "content": system.strip()}]
  if len(conv) == 1:
    conv.append({"role": "user", "content": ""})
  if add_generation_prompt and conv[-1]["role"] == "assistant":
    conv.append({"role": "user", "content": _FINAL_USER})
  return conv, turns


@dataclasses.dataclass
class ChatEpisode:
  """An episode rendered with a chat template.

  Attributes:
    per_message: per episode message, its `(text, loss)` pieces; an output
      rendered as an assistant turn holds the text since the previous turn,
      its loss span (content + end-of-turn) and trailing context; other
      messages hold nothing (their text is in the next turn's context).
    tail: the text after the last assistant turn: the generation prompt
      when asked for, else what follows the last turn (usually nothing).
  """

  per_message: list[list[tuple[str, bool]]]
  tail: str


class ChatTemplate:
  """The `chat` template bound to one tokenizer's Jinja chat template.

  Has what the named templates have where callers need it: `name`,
  `content_prefix` (nothing: options follow the generation prompt
  directly), `stop` (the end-of-turn token) and `special_tokens`.

  Args:
    tokenizer: a `spectrax.data.tokenizer.HFTokenizer` whose directory has a
      chat template (tokenizer_config.json's `chat_template` or
      chat_template.jinja).
    prompting: the release's settings for the suite (`PROMPTINGS`).

  Raises:
    ChatTemplateError: the tokenizer has no chat template, or its template
      cannot be split into turns (checked on a probe conversation).
  """

  name = CHAT
  content_prefix = ""
  strip_output = False

  def __init__(self, tokenizer, prompting: ChatPrompting = PROMPTINGS["icl"]):
    render = getattr(tokenizer, "apply_chat_template", None)
    if render is None or not getattr(tokenizer, "chat_template", None):
      raise ChatTemplateError(
          f"tokenizer {getattr(tokenizer, 'name', tokenizer)!r} has no chat template: the "
          "'chat' template formats with an instruct checkpoint's own template "
          "(tokenizer_config.json's chat_template or chat_template.jinja in its directory); "
          "use gemma, qwen, llama or colon for other models")
    self.tokenizer = tokenizer
    self.prompting = prompting
    bos = getattr(tokenizer, "bos_token", None)
    self._bos_text = bos if bos and tokenizer.bos_id is not None else None
    self._warned = False
    self.end_of_turn = self._probe_end_of_turn()
    self.stop = self.end_of_turn
    self.special_tokens = (self.end_of_turn,)
    self.end_of_turn_id = tokenizer.single_token_id(self.end_of_turn)
    if self.end_of_turn_id is None:
      raise ChatTemplateError(
          f"the chat template of {tokenizer.name!r} ends an assistant turn with "
          f"{self.end_of_turn!r}, which its tokenizer splits into several tokens")

  def with_prompting(self, prompting: ChatPrompting | str) -> "ChatTemplate":
    """The same template with another suite's settings (a name of `PROMPTINGS`)."""
    out = copy.copy(self)
    out.prompting = PROMPTINGS[prompting] if isinstance(prompting, str) else prompting
    return out

  # -- rendering -------------------------------------------------------------

  def render(self, conv: Sequence[dict[str, str]], add_generation_prompt: bool) -> str:
    """The template's text of `conv`, without a leading BOS callers add themselves."""
    try:
      text = self.tokenizer.apply_chat_template(
          list(conv), add_generation_prompt=add_generation_prompt, enable_thinking=False)
    except Exception as e:  # Jinja raises its own types (raise_exception, syntax).
      roles = "/".join(m["role"] for m in conv)
      raise ChatTemplateError(
          f"the chat template of {self.tokenizer.name!r} failed on a {roles} conversation: "
          f"{type(e).__name__}: {e}") from e
    if self._bos_text and text.startswith(self._bos_text):
      text = text[len(self._bos_text):]
    return text

  def _probe_end_of_turn(self) -> str:
    """The added token the template puts right after an assistant's content."""
    conv = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
            {"role": "assistant", "content": _SENTINEL}]
    text = self.render(conv, False)
    at = text.find(_SENTINEL)
    if at < 0:
      raise ChatTemplateError(f"the chat template of {self.tokenizer.name!r} does not render "
                              "an assistant message's content")
    rest = text[at + len(_SENTINEL):]
    added = sorted(self.tokenizer.added_tokens(), key=len, reverse=True)
    for token in added:
      if token and rest.startswith(token):
        return token
    raise ChatTemplateError(
        f"the chat template of {self.tokenizer.name!r} puts {rest[:20]!r} after an assistant "
        "message, not one of its tokenizer's added tokens, so the end of a turn (what an "
        "output's loss span ends with and sampling stops at) is unknown")

  def _reply(self, conv, j: int, prompt: str) -> tuple[str, str]:
    """(body, trailing context) of assistant turn `j` rendered as the latest reply."""
    full = self.render(conv[:j + 1], False)
    where = f"the chat template of {self.tokenizer.name!r}"
    if not full.startswith(prompt):
      raise ChatTemplateError(
          f"{where} is not prefix-stable: the conversation with assistant turn {j} does not "
          f"begin with its generation prompt (they part at character "
          f"{_common_prefix(full, prompt)}: {full[len(prompt) - 20:len(prompt) + 20]!r} vs "
          f"{prompt[-20:]!r}), so the turn's loss span cannot be located")
    reply = full[len(prompt):]
    end = reply.find(self.end_of_turn)
    content = conv[j]["content"]
    if end < 0 or reply[:end].strip() != content.strip():
      raise ChatTemplateError(
          f"{where} does not render assistant turn {j} as its content then "
          f"{self.end_of_turn!r} after the generation prompt (got {reply[:60]!r} for "
          f"{content[:40]!r}), so the turn's loss span cannot be located")
    return reply[:end], reply[end + len(self.end_of_turn):]

  def _after_turn(self, conv, j: int, trail: str, add_generation_prompt: bool) -> str:
    """What `render(conv)` puts after assistant turn `j`'s end-of-turn and trail."""
    marked = [dict(m) for m in conv]
    marked[j]["content"] = _SENTINEL
    text = self.render(marked, add_generation_prompt)
    where = f"the chat template of {self.tokenizer.name!r}"
    if text.count(_SENTINEL) != 1:
      raise ChatTemplateError(f"{where} does not render an earlier assistant turn exactly once "
                              "in a later conversation, so turns cannot be stitched")
    rest = text[text.index(_SENTINEL) + len(_SENTINEL):]
    if not rest.startswith(self.end_of_turn + trail):
      raise ChatTemplateError(
          f"{where} is not prefix-stable: an earlier assistant turn ends with "
          f"{rest[:len(self.end_of_turn + trail) + 10]!r} in a later conversation but with "
          f"{self.end_of_turn + trail!r} as the latest reply")
    return rest[len(self.end_of_turn + trail):]

  def episode(self, messages: Sequence[Any], add_generation_prompt: bool = False
              ) -> ChatEpisode:
    """`messages` (validated `episodes.Message`s) as text pieces (see `ChatEpisode`).

    Loss: every assistant turn (with a description every output; without
    one, every output after the first, which sits in the system message).
    """
    conv, turns = to_chat(messages, self.prompting, add_generation_prompt)
    per_message: list[list[tuple[str, bool]]] = [[] for _ in messages]
    prev: tuple[int, str] | None = None
    for j, source in turns:
      prompt = self.render(conv[:j], True)
      before = prompt if prev is None else self._after_turn(conv[:j], prev[0], prev[1], True)
      body, trail = self._reply(conv, j, prompt)
      per_message[source] = [(before, False), (body + self.end_of_turn, True)]
      if trail:
        per_message[source].append((trail, False))
      prev = (j, trail)
    if prev is None:
      tail = self.render(conv, add_generation_prompt)
    else:
      tail = self._after_turn(conv, prev[0], prev[1], add_generation_prompt)
    if not self._warned and turns:
      stitched = "".join(t for ps in per_message for t, _ in ps) + tail
      if stitched != self.render(conv, add_generation_prompt):
        self._warned = True
        log.warning("the chat template of %r renders earlier assistant turns differently from "
                    "the latest (e.g. Qwen3 drops the empty think block from history); each "
                    "turn is kept as the model's reply saw it, as the release did "
                    "(docs/method.md#chat-template).", self.tokenizer.name)
    return ChatEpisode(per_message, tail)

  def generation_prompt_for(self, messages: Sequence[Any]) -> str:
    """The generation prompt after `messages` (what follows their last turn)."""
    return self.episode(messages, add_generation_prompt=True).tail


def _common_prefix(a: str, b: str) -> int:
  n = 0
  for x, y in zip(a, b):
    if x != y:
      break
    n += 1
  return n


def is_chat(template: Any) -> bool:
  return isinstance(template, ChatTemplate)
