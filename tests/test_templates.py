"""The four templates: their exact strings, special tokens and stop text."""

import dataclasses

import pytest

from spectrax.data import templates


def _render(t, role, content):
  """One message as its template writes it (episodes.py joins these)."""
  return t.header(role) + t.content_prefix + content + t.terminal + \
      t.after_terminal


# template -> (description "D", input "X", output "Y"), exactly as rendered.
GOLDEN = {
    "gemma": ("<start_of_turn>description\nD<end_of_turn>\n",
              "<start_of_turn>input\nX<end_of_turn>\n",
              "<start_of_turn>output\nY<end_of_turn>\n"),
    "qwen": ("<|im_start|>description\nD<|im_end|>\n",
             "<|im_start|>input\nX<|im_end|>\n",
             "<|im_start|>output\nY<|im_end|>\n"),
    "llama": ("<|start_header_id|>description<|end_header_id|>\n\nD<|eot_id|>",
              "<|start_header_id|>input<|end_header_id|>\n\nX<|eot_id|>",
              "<|start_header_id|>output<|end_header_id|>\n\nY<|eot_id|>"),
    "colon": ("Description: D\n\n", "Input: X\n\n", "Output: Y\n\n"),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_messages_render_exactly(name):
  t = templates.get_template(name)
  assert t.name == name
  assert tuple(_render(t, role, c) for role, c in
               zip(templates.ROLES, "DXY")) == GOLDEN[name]


@pytest.mark.parametrize("name,loss_span", [
    ("gemma", "Y<end_of_turn>"), ("qwen", "Y<|im_end|>"),
    ("llama", "Y<|eot_id|>"), ("colon", " Y\n\n")])
def test_loss_span_is_prefix_content_terminal(name, loss_span):
  # An output's loss span holds the terminal (and colon's space before y),
  # never the header or gemma/qwen's newline after the terminal.
  t = templates.get_template(name)
  assert t.content_prefix + "Y" + t.terminal == loss_span


@pytest.mark.parametrize("name,strip", [
    ("gemma", False), ("qwen", False), ("llama", False), ("colon", True)])
def test_only_colon_strips_outputs(name, strip):
  # The release's colon output is " " + (y + "\n\n").strip() + "\n\n"
  # (tsor13/spectrum@5a33588 src/spectrum/format_utils.py:488-491).
  assert templates.get_template(name).strip_output is strip


@pytest.mark.parametrize("name,prompt,stop,special", [
    ("gemma", "<start_of_turn>output\n", "<end_of_turn>",
     ("<start_of_turn>", "<end_of_turn>")),
    ("qwen", "<|im_start|>output\n", "<|im_end|>",
     ("<|im_start|>", "<|im_end|>")),
    ("llama", "<|start_header_id|>output<|end_header_id|>\n\n", "<|eot_id|>",
     ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")),
    ("colon", "Output:", "\n", ()),
])
def test_generation_prompt_stop_and_special_tokens(name, prompt, stop, special):
  t = templates.get_template(name)
  assert t.generation_prompt() == prompt
  assert t.stop == stop
  assert t.special_tokens == special


def test_all_special_tokens_in_template_order_without_repeats(monkeypatch):
  assert templates.all_special_tokens() == (
      "<start_of_turn>", "<end_of_turn>", "<|im_start|>", "<|im_end|>",
      "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
  # A second template with gemma's tokens adds none.
  twin = dataclasses.replace(templates.TEMPLATES["gemma"], name="twin")
  monkeypatch.setattr(templates, "TEMPLATES",
                      dict(templates.TEMPLATES, twin=twin))
  assert len(templates.all_special_tokens()) == 7


def test_errors_name_the_value_and_the_choices():
  with pytest.raises(ValueError) as e:
    templates.get_template("chatml")
  assert str(e.value) == ("unknown template 'chatml'; choose one of "
                          "['colon', 'gemma', 'llama', 'qwen'] (config field "
                          "`template`).")
  with pytest.raises(ValueError) as e:
    templates.TEMPLATES["gemma"].header("assistant")
  assert str(e.value) == ("unknown message role 'assistant'; roles are "
                          "('description', 'input', 'output').")


def test_templates_are_immutable():
  with pytest.raises(dataclasses.FrozenInstanceError):
    templates.TEMPLATES["gemma"].terminal = "</s>"
