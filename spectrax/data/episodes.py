"""Episodes: messages → template text segments → tokens and loss mask.

docs/method.md#episodes-and-templates in code. Pure Python + numpy (no jax), so it is testable in
milliseconds and usable in Grain worker processes.

Loss-mask convention (the one place it is defined): `loss_mask[i]` is 1 when
token `i` is *predicted* with loss, i.e. when it lies in an output's loss
span. Training shifts once, in `training_arrays`: inputs = tokens[:-1],
targets = tokens[1:], mask = loss_mask[1:].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from spectrax.data import templates as templates_lib
from spectrax.data.chat_template import ChatTemplate
from spectrax.data.tokenizer import Tokenizer

# A named template, or the `chat` template bound to a tokenizer
# (spectrax/data/chat_template.py; evaluation and scoring only).
AnyTemplate = templates_lib.Template | ChatTemplate


@dataclasses.dataclass(frozen=True)
class Message:
  role: str  # "description" | "input" | "output"
  content: str


MessageLike = Message | Mapping[str, str]


def as_messages(messages: Sequence[MessageLike]) -> list[Message]:
  """Validates messages (docs/method.md#messages) and returns them as `Message`s."""
  out = []
  for i, m in enumerate(messages):
    if isinstance(m, Mapping):
      if set(m) - {"role", "content"} or "role" not in m or "content" not in m:
        raise ValueError(f"message {i} must have exactly the keys 'role' and "
                         f"'content'; got {sorted(m)}.")
      m = Message(m["role"], m["content"])
    if m.role not in templates_lib.ROLES:
      raise ValueError(f"message {i} has role {m.role!r}; roles are "
                       f"{templates_lib.ROLES}.")
    if not isinstance(m.content, str):
      raise ValueError(f"message {i} content must be a string, got "
                       f"{type(m.content).__name__}.")
    if m.role == "description" and i != 0:
      raise ValueError(f"message {i} is a description; an episode has at most "
                       "one description and it comes first.")
    out.append(m)
  return out


def _template(template: str | AnyTemplate) -> AnyTemplate:
  if isinstance(template, (templates_lib.Template, ChatTemplate)):
    return template
  return templates_lib.get_template(template)


def _message_pieces(message: Message, t: templates_lib.Template,
                    carries_loss: bool) -> list[tuple[str, bool]]:
  """A message as (text, loss) pieces; loss pieces are output bodies only."""
  header = t.header(message.role)
  content = message.content
  if message.role == "output" and t.strip_output:
    content = content.strip()
  body = t.content_prefix + content + t.terminal
  if message.role != "output":
    return [(header + body + t.after_terminal, False)]
  pieces = [(header, False), (body, carries_loss)]
  if t.after_terminal:
    pieces.append((t.after_terminal, False))
  return pieces


def _episode_pieces(messages: list[Message], t: AnyTemplate
                    ) -> list[list[tuple[str, bool]]]:
  """Per message, its pieces, applying the no-description rule."""
  if isinstance(t, ChatTemplate):
    return t.episode(messages).per_message
  has_description = bool(messages) and messages[0].role == "description"
  first_output_seen = False
  per_message = []
  for m in messages:
    loss = m.role == "output" and (has_description or first_output_seen)
    if m.role == "output":
      first_output_seen = True
    per_message.append(_message_pieces(m, t, loss))
  return per_message


def _generation_prompt(messages: list[Message], t: AnyTemplate) -> str:
  """What a prompt ends with after `messages` (the chat template's depends on them)."""
  if isinstance(t, ChatTemplate):
    return t.generation_prompt_for(messages)
  return t.generation_prompt()


def format_episode(messages: Sequence[MessageLike],
                   template: str | AnyTemplate,
                   add_generation_prompt: bool = False
                   ) -> list[tuple[str, bool]]:
  """The episode as ordered text segments, each flagged whether it has loss.

  Adjacent segments with the same flag are merged, so loss and context
  alternate; `"".join(text for text, _ in segments)` is the exact episode.
  With no description the first output is context (docs/method.md#episodes-and-templates).
  """
  t = _template(template)
  msgs = as_messages(messages)
  if isinstance(t, ChatTemplate):
    chat = t.episode(msgs, add_generation_prompt)
    pieces = [p for ps in chat.per_message for p in ps] + [(chat.tail, False)]
  else:
    pieces = [p for ps in _episode_pieces(msgs, t) for p in ps]
    if add_generation_prompt:
      pieces.append((t.generation_prompt(), False))
  merged: list[tuple[str, bool]] = []
  for text, loss in pieces:
    if merged and merged[-1][1] == loss:
      merged[-1] = (merged[-1][0] + text, loss)
    else:
      merged.append((text, loss))
  return merged


@dataclasses.dataclass
class TokenizedEpisode:
  """Token ids and loss mask of one (possibly truncated) episode.

  Attributes:
    tokens: [n] int32, BOS first when the tokenizer has one.
    loss_mask: [n] bool, True where the token is predicted with loss.
    num_examples: output messages kept.
    truncated: examples were cut to fit `max_tokens`.
    mismatch: segment-wise ids differ from tokenising the joined string.
  """

  tokens: np.ndarray
  loss_mask: np.ndarray
  num_examples: int
  truncated: bool
  mismatch: bool

  @property
  def num_loss_tokens(self) -> int:
    return int(self.loss_mask.sum())


def tokenize_episode(messages: Sequence[MessageLike],
                     template: str | AnyTemplate,
                     tokenizer: Tokenizer,
                     max_tokens: int | None = None,
                     add_generation_prompt: bool = False,
                     check_joint: bool = True) -> TokenizedEpisode:
  """Tokenises an episode segment by segment, truncating at an example boundary.

  Args:
    messages: the episode.
    template: a template name or `Template`.
    tokenizer: any `Tokenizer`.
    max_tokens: keep the longest prefix of whole examples (an optional input
      plus its output) whose tokens, BOS included, number at most this. The
      description is always kept. None keeps everything.
    add_generation_prompt: append the output header (for prompts).
    check_joint: also tokenise the joined string and report a mismatch.

  Returns:
    The `TokenizedEpisode`; `num_loss_tokens == 0` means the caller must drop
    it (docs/method.md#episode-sampling: an episode left with no loss-bearing output is dropped).
  """
  t = _template(template)
  msgs = as_messages(messages)
  per_message = _episode_pieces(msgs, t)
  ids: list[int] = [] if tokenizer.bos_id is None else [tokenizer.bos_id]
  mask: list[bool] = [False] * len(ids)
  kept_text: list[str] = []
  kept_ids, kept_mask, kept_text_len = len(ids), len(ids), 0
  kept_messages = 0
  num_examples = kept_examples = 0
  truncated = False
  first_piece = True
  for n, (m, pieces) in enumerate(zip(msgs, per_message)):
    for text, loss in pieces:
      piece_ids = tokenizer.encode(text, continuation=not first_piece)
      first_piece = False
      ids.extend(piece_ids)
      mask.extend([loss] * len(piece_ids))
      kept_text.append(text)
    if max_tokens is not None and len(ids) > max_tokens:
      truncated = True
      break
    # Example boundaries are after outputs (and after the description).
    if m.role in ("output", "description"):
      num_examples += m.role == "output"
      kept_ids, kept_mask, kept_text_len = len(ids), len(mask), len(kept_text)
      kept_examples, kept_messages = num_examples, n + 1
  if truncated or (msgs and msgs[-1].role == "input" and
                   not add_generation_prompt):
    ids, mask = ids[:kept_ids], mask[:kept_mask]
    kept_text = kept_text[:kept_text_len]
  else:
    kept_examples, kept_messages = num_examples, len(msgs)
  if add_generation_prompt:
    gen_text = _generation_prompt(msgs[:kept_messages], t)
    gen_ids = tokenizer.encode(gen_text, continuation=bool(kept_text))
    ids.extend(gen_ids)
    mask.extend([False] * len(gen_ids))
    kept_text.append(gen_text)
  mismatch = False
  if check_joint and kept_text:
    joint = ([] if tokenizer.bos_id is None else [tokenizer.bos_id]) + \
        tokenizer.encode("".join(kept_text))
    mismatch = joint != ids
  return TokenizedEpisode(
      tokens=np.asarray(ids, np.int32),
      loss_mask=np.asarray(mask, bool),
      num_examples=kept_examples,
      truncated=truncated,
      mismatch=mismatch)


def training_arrays(episode: TokenizedEpisode) -> dict[str, np.ndarray]:
  """Next-token arrays of one episode: `inputs`, `targets` [n-1] int32 and
  `loss_mask` [n-1] float32, aligned to the targets."""
  return {
      "inputs": episode.tokens[:-1],
      "targets": episode.tokens[1:],
      "loss_mask": episode.loss_mask[1:].astype(np.float32),
  }
