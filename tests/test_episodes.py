"""Episodes: formatting with each template, tokenisation and the loss mask."""

import numpy as np
import pytest

from spectrax.data import templates
from spectrax.data.episodes import (Message, format_episode, tokenize_episode,
                               training_arrays)
from spectrax.data.tokenizer import load_tokenizer

D = Message("description", "Coin flips.")
X1, Y1 = Message("input", "flip 1"), Message("output", "Heads")
X2, Y2 = Message("input", "flip 2"), Message("output", "Tails")

# Golden strings: (template, messages, add_generation_prompt) → segments.
GOLDEN = {
    ("gemma", "desc+inputs"): [
        ("<start_of_turn>description\nCoin flips.<end_of_turn>\n"
         "<start_of_turn>input\nflip 1<end_of_turn>\n"
         "<start_of_turn>output\n", False),
        ("Heads<end_of_turn>", True),
        ("\n<start_of_turn>input\nflip 2<end_of_turn>\n"
         "<start_of_turn>output\n", False),
        ("Tails<end_of_turn>", True),
        ("\n", False)],
    ("qwen", "desc+inputs"): [
        ("<|im_start|>description\nCoin flips.<|im_end|>\n"
         "<|im_start|>input\nflip 1<|im_end|>\n<|im_start|>output\n", False),
        ("Heads<|im_end|>", True),
        ("\n<|im_start|>input\nflip 2<|im_end|>\n<|im_start|>output\n", False),
        ("Tails<|im_end|>", True),
        ("\n", False)],
    ("llama", "desc+inputs"): [
        ("<|start_header_id|>description<|end_header_id|>\n\nCoin flips."
         "<|eot_id|><|start_header_id|>input<|end_header_id|>\n\nflip 1"
         "<|eot_id|><|start_header_id|>output<|end_header_id|>\n\n", False),
        ("Heads<|eot_id|>", True),
        ("<|start_header_id|>input<|end_header_id|>\n\nflip 2<|eot_id|>"
         "<|start_header_id|>output<|end_header_id|>\n\n", False),
        ("Tails<|eot_id|>", True)],
    ("colon", "desc+inputs"): [
        ("Description: Coin flips.\n\nInput: flip 1\n\nOutput:", False),
        (" Heads\n\n", True),
        ("Input: flip 2\n\nOutput:", False),
        (" Tails\n\n", True)],
    # No description: the first output is context (docs/method.md#episodes-and-templates).
    ("gemma", "outputs"): [
        ("<start_of_turn>output\nHeads<end_of_turn>\n"
         "<start_of_turn>output\n", False),
        ("Tails<end_of_turn>", True),
        ("\n", False)],
    ("colon", "outputs"): [
        ("Output: Heads\n\nOutput:", False),
        (" Tails\n\n", True)],
    ("llama", "outputs"): [
        ("<|start_header_id|>output<|end_header_id|>\n\nHeads<|eot_id|>"
         "<|start_header_id|>output<|end_header_id|>\n\n", False),
        ("Tails<|eot_id|>", True)],
    ("qwen", "desc+outputs"): [
        ("<|im_start|>description\nCoin flips.<|im_end|>\n"
         "<|im_start|>output\n", False),
        ("Heads<|im_end|>", True),
        ("\n<|im_start|>output\n", False),
        ("Tails<|im_end|>", True),
        ("\n", False)],
}
EPISODES = {"desc+inputs": [D, X1, Y1, X2, Y2], "outputs": [Y1, Y2],
            "desc+outputs": [D, Y1, Y2]}


@pytest.mark.parametrize("template,kind", sorted(GOLDEN))
def test_golden_segments(template, kind):
  assert format_episode(EPISODES[kind], template) == GOLDEN[(template, kind)]


@pytest.mark.parametrize("template,prompt", [
    ("gemma", "<start_of_turn>description\nCoin flips.<end_of_turn>\n"
              "<start_of_turn>input\nflip 1<end_of_turn>\n"
              "<start_of_turn>output\n"),
    ("qwen", "<|im_start|>description\nCoin flips.<|im_end|>\n"
             "<|im_start|>input\nflip 1<|im_end|>\n<|im_start|>output\n"),
    ("llama", "<|start_header_id|>description<|end_header_id|>\n\nCoin flips."
              "<|eot_id|><|start_header_id|>input<|end_header_id|>\n\nflip 1"
              "<|eot_id|><|start_header_id|>output<|end_header_id|>\n\n"),
    ("colon", "Description: Coin flips.\n\nInput: flip 1\n\nOutput:"),
])
def test_generation_prompt(template, prompt):
  segments = format_episode([D, X1], template, add_generation_prompt=True)
  assert segments == [(prompt, False)]


def test_colon_strips_outputs_as_the_release():
  """Release (tsor13/spectrum@5a33588 src/spectrum/format_utils.py:488-491):
  " " + ("  Heads \n" + "\n\n").strip() + "\n\n" = " Heads\n\n"; the
  description and input keep their whitespace, other templates keep all."""
  msgs = [Message("description", " Coins "), Message("input", " flip "),
          Message("output", "  Heads \n"), Message("output", "\tTa ils\n")]
  assert format_episode(msgs, "colon") == [
      ("Description:  Coins \n\nInput:  flip \n\nOutput:", False),
      (" Heads\n\n", True), ("Output:", False), (" Ta ils\n\n", True)]
  assert format_episode(msgs[2:], "gemma") == [
      ("<start_of_turn>output\n  Heads \n<end_of_turn>\n"
       "<start_of_turn>output\n", False),
      ("\tTa ils\n<end_of_turn>", True), ("\n", False)]
  # An all-whitespace output leaves the space and the blank line.
  assert format_episode([D, Message("output", " \n ")], "colon")[1] == (
      " \n\n", True)


def test_dict_messages_and_errors():
  assert format_episode([{"role": "output", "content": "a"}], "colon") == [
      ("Output: a\n\n", False)]
  with pytest.raises(ValueError, match="unknown template 'chatml'"):
    format_episode([Y1], "chatml")
  with pytest.raises(ValueError, match="role 'assistant'"):
    format_episode([{"role": "assistant", "content": "a"}], "gemma")
  with pytest.raises(ValueError, match="description and it comes first"):
    format_episode([Y1, D], "gemma")
  with pytest.raises(ValueError, match="content must be a string"):
    format_episode([Message("output", 3)], "gemma")


@pytest.mark.parametrize("template", sorted(templates.TEMPLATES))
def test_mask_marks_exactly_outputs_and_terminal(template, sp_tokenizer):
  ep = tokenize_episode(EPISODES["desc+inputs"], template, sp_tokenizer)
  assert ep.tokens[0] == sp_tokenizer.bos_id
  assert not ep.mismatch
  t = templates.TEMPLATES[template]
  # The loss tokens, split into runs, decode to exactly each output's span.
  runs, run = [], []
  for tok, m in zip(ep.tokens, ep.loss_mask):
    if m:
      run.append(int(tok))
    elif run:
      runs.append(run)
      run = []
  if run:
    runs.append(run)
  spans = [sp_tokenizer.decode(r) for r in runs]
  assert spans == [t.content_prefix + "Heads" + t.terminal,
                   t.content_prefix + "Tails" + t.terminal]
  # Everything joined is the exact episode string.
  text = "".join(s for s, _ in format_episode(EPISODES["desc+inputs"], t))
  assert sp_tokenizer.decode(ep.tokens[1:].tolist()) == text


def test_training_arrays_align_mask_to_targets(sp_tokenizer):
  ep = tokenize_episode([D, Y1], "gemma", sp_tokenizer)
  arrays = training_arrays(ep)
  np.testing.assert_array_equal(arrays["inputs"], ep.tokens[:-1])
  np.testing.assert_array_equal(arrays["targets"], ep.tokens[1:])
  np.testing.assert_array_equal(arrays["loss_mask"],
                                ep.loss_mask[1:].astype(np.float32))
  eot = sp_tokenizer.piece_to_id("<end_of_turn>")
  # The terminal token is predicted with loss; the newline after it is not.
  i = int(np.where(arrays["targets"] == eot)[0][-1])
  assert arrays["loss_mask"][i] == 1.0
  assert arrays["loss_mask"][i + 1:].sum() == 0


def test_truncation_keeps_whole_examples(sp_tokenizer):
  msgs = [D] + [m for i in range(40) for m in (Message("input", f"flip {i}"),
                                               Message("output", "Heads"))]
  full = tokenize_episode(msgs, "gemma", sp_tokenizer)
  assert not full.truncated and full.num_examples == 40
  for max_tokens in (60, 97, 150, len(full.tokens) - 1):
    ep = tokenize_episode(msgs, "gemma", sp_tokenizer, max_tokens=max_tokens)
    assert ep.truncated and len(ep.tokens) <= max_tokens
    # The result is exactly the episode of its first k examples.
    k = ep.num_examples
    ref = tokenize_episode(msgs[:1 + 2 * k], "gemma", sp_tokenizer)
    np.testing.assert_array_equal(ep.tokens, ref.tokens)
    np.testing.assert_array_equal(ep.loss_mask, ref.loss_mask)
    # And one more example would not have fit.
    longer = tokenize_episode(msgs[:3 + 2 * k], "gemma", sp_tokenizer)
    assert len(longer.tokens) > max_tokens
  assert tokenize_episode(msgs, "gemma", sp_tokenizer,
                          max_tokens=len(full.tokens)).truncated is False


def test_nothing_fits_gives_no_loss_tokens(sp_tokenizer):
  ep = tokenize_episode([D, X1, Y1], "gemma", sp_tokenizer, max_tokens=5)
  assert ep.num_loss_tokens == 0 and ep.num_examples == 0
  # Without a description the first output is context: no loss either.
  ep = tokenize_episode([Y1], "gemma", sp_tokenizer)
  assert ep.num_loss_tokens == 0


def test_generation_prompt_tokens(sp_tokenizer):
  ep = tokenize_episode([D, X1], "gemma", sp_tokenizer,
                        add_generation_prompt=True)
  assert ep.num_loss_tokens == 0
  assert sp_tokenizer.decode(ep.tokens[1:].tolist()).endswith(
      "<start_of_turn>output\n")


def test_real_mistral_tokenizer(mistral_tokenizer_path):
  tok = load_tokenizer(mistral_tokenizer_path)
  msgs = [Message("description", "Draws from a Poisson distribution."),
          Message("input", "What  comes next?"), Message("output", "17"),
          Message("input", "And then?"), Message("output", "  3.25\n")]
  ep = tokenize_episode(msgs, "colon", tok)
  # Segment-wise ids equal the joined string's: no dummy "▁" per segment.
  assert not ep.mismatch
  assert list(ep.tokens).count(1) == 1 and ep.tokens[0] == 1
  # Loss runs, read back piece by piece (decode would drop a leading space),
  # are exactly " {y.strip()}\n\n" for each output (colon strips outputs as
  # the release does, so "  3.25\n" becomes " 3.25\n\n").
  def text(ids):
    out = ""
    for i in ids:
      piece = tok.id_to_piece(int(i))
      out += chr(int(piece[3:5], 16)) if piece.startswith("<0x") else piece
    return out.replace("\u2581", " ")
  mask = np.concatenate([ep.loss_mask, [False]])
  starts = np.where(mask[1:] & ~mask[:-1])[0] + 1
  ends = np.where(mask[:-1] & ~mask[1:])[0] + 1
  if mask[0]:
    starts = np.concatenate([[0], starts])
  assert [text(ep.tokens[a:b]) for a, b in zip(starts, ends)] == [
      " 17\n\n", " 3.25\n\n"]
