"""The four episode templates of docs/method.md#episodes-and-templates — the only place template strings live.

A template renders one message as text pieces. For an *output* message the
loss span is `content_prefix + content + terminal` (the terminal token is part
of what the model must learn to produce); everything else is context.
"""

from __future__ import annotations

import dataclasses

ROLES = ("description", "input", "output")


@dataclasses.dataclass(frozen=True)
class Template:
  """How one chat format renders description/input/output messages.

  Attributes:
    name: the template's config name.
    header_format: text opening a message; `{role}` is the role name (or its
      capitalised form for `colon`).
    terminal: ends every message; inside the loss span for outputs.
    after_terminal: context text after the terminal (gemma/qwen: a newline).
    content_prefix: text between any header and its content (colon: a
      space); for outputs it is inside the loss span (docs/method.md#episodes-and-templates: `Output:[ y]`).
    special_tokens: strings that must each be a single token.
    stop: what sampling stops at (the terminal, or `\\n` for colon).
    strip_output: output contents are stripped of surrounding whitespace
      before rendering (colon only: the release writes an output as
      `" " + (y + "\\n\\n").strip() + "\\n\\n"`, in training and
      evaluation alike; docs/method.md#templates).
  """

  name: str
  header_format: str
  terminal: str
  after_terminal: str = ""
  content_prefix: str = ""
  capitalise_role: bool = False
  special_tokens: tuple[str, ...] = ()
  stop: str = ""
  strip_output: bool = False

  def header(self, role: str) -> str:
    if role not in ROLES:
      raise ValueError(f"unknown message role {role!r}; roles are {ROLES}.")
    return self.header_format.format(
        role=role.capitalize() if self.capitalise_role else role)

  def generation_prompt(self) -> str:
    """The output header alone: what a prompt ends with before sampling."""
    return self.header("output")


TEMPLATES: dict[str, Template] = {
    "gemma": Template(
        name="gemma",
        header_format="<start_of_turn>{role}\n",
        terminal="<end_of_turn>",
        after_terminal="\n",
        special_tokens=("<start_of_turn>", "<end_of_turn>"),
        stop="<end_of_turn>",
    ),
    "qwen": Template(
        name="qwen",
        header_format="<|im_start|>{role}\n",
        terminal="<|im_end|>",
        after_terminal="\n",
        special_tokens=("<|im_start|>", "<|im_end|>"),
        stop="<|im_end|>",
    ),
    "llama": Template(
        name="llama",
        header_format="<|start_header_id|>{role}<|end_header_id|>\n\n",
        terminal="<|eot_id|>",
        special_tokens=("<|start_header_id|>", "<|end_header_id|>",
                        "<|eot_id|>"),
        stop="<|eot_id|>",
    ),
    "colon": Template(
        name="colon",
        header_format="{role}:",
        terminal="\n\n",
        content_prefix=" ",
        capitalise_role=True,
        stop="\n",
        strip_output=True,
    ),
}

# `chat` formats with a checkpoint's own Jinja chat template, so it needs the
# tokenizer: spectrax/data/chat_template.py builds it (evaluation and scoring
# only; docs/method.md#templates).
CHAT = "chat"
TEMPLATE_NAMES = (*TEMPLATES, CHAT)


def get_template(name: str) -> Template:
  if name == CHAT:
    raise ValueError(
        "template 'chat' formats with an instruct checkpoint's own chat template and is for "
        "evaluating instruct comparators (python -m spectrax.evaluate --model=NAME=hf:DIR#chat, "
        "or \"template\": \"chat\" in python -m spectrax.score requests), not for training: "
        f"choose one of {sorted(TEMPLATES)} (config field `template`).")
  try:
    return TEMPLATES[name]
  except KeyError:
    raise ValueError(
        f"unknown template {name!r}; choose one of {sorted(TEMPLATES)} "
        "(config field `template`).") from None


def all_special_tokens() -> tuple[str, ...]:
  """Every template's special tokens (for training the default tokenizer)."""
  out: list[str] = []
  for t in TEMPLATES.values():
    out.extend(s for s in t.special_tokens if s not in out)
  return tuple(out)
