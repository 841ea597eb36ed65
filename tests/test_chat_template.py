"""The `chat` template (spectrax/data/chat_template.py, docs/method.md#chat-template):
an instruct checkpoint's own Jinja chat template, read offline from a tokenizer
directory, with exact loss spans; and spectrax.score / spectrax.evaluate using it."""

import json
import os

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")

from spectrax.data import chat_template as chat_lib  # noqa: E402
from spectrax.data import templates  # noqa: E402
from spectrax.data.episodes import Message, format_episode, tokenize_episode  # noqa: E402
from spectrax.data.tokenizer import load_tokenizer  # noqa: E402

# Gemma 3's instruct template (google/gemma-3-*-it tokenizer_config.json).
GEMMA3 = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\\n'}}\n"
    "{%- endif -%}\n")

# ChatML as Qwen2.5 writes it (no default system message here).
CHATML = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")

# Qwen3's rule for the latest assistant turn: an empty think block before the
# reply, and none in history; enable_thinking=false gives the generation
# prompt the same block.
QWEN3_LIKE = (
    "{%- set ns = namespace(last_query_index=messages|length - 1) %}"
    "{%- for message in messages[::-1] %}{%- set index = (messages|length - 1) - loop.index0 %}"
    "{%- if message.role == 'user' and ns.last_query_index == messages|length - 1 %}"
    "{%- set ns.last_query_index = index %}{%- endif %}{%- endfor %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' %}"
    "{%- if loop.index0 > ns.last_query_index and loop.last %}"
    "{{- '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' + message.content }}"
    "{%- else %}{{- '<|im_start|>assistant\\n' + message.content }}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}")

# A template whose generation prompt is not how it opens a reply.
MISMATCHED = CHATML.replace("{{- '<|im_start|>assistant\\n' }}", "{{- '<|im_start|>model\\n' }}")

SPECIALS = ["<pad>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<|im_start|>",
            "<|im_end|>", "<think>", "</think>"]


def write_tokenizer(directory, chat_template, bos=True):
  """A byte-level BPE tokenizer (every byte a token, no merges) with the
  templates' markers as special tokens and `chat_template` in its config."""
  from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors  # pylint: disable=g-import-not-at-top
  alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
  tok = Tokenizer(models.BPE({c: i for i, c in enumerate(alphabet)}, []))
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
  tok.decoder = decoders.ByteLevel()
  tok.add_special_tokens(SPECIALS)
  if bos:
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", tok.token_to_id("<bos>"))])
  fast = transformers.PreTrainedTokenizerFast(
      tokenizer_object=tok, bos_token="<bos>" if bos else None, eos_token="<eos>",
      pad_token="<pad>")
  fast.chat_template = chat_template
  fast.save_pretrained(directory)
  return directory


@pytest.fixture(scope="module")
def gemma_tok(tmp_path_factory):
  return load_tokenizer(write_tokenizer(str(tmp_path_factory.mktemp("gemma_it")), GEMMA3))


@pytest.fixture(scope="module")
def chatml_tok(tmp_path_factory):
  return load_tokenizer(write_tokenizer(str(tmp_path_factory.mktemp("chatml")), CHATML,
                                        bos=False))


EPISODE = [Message("description", "Flip a coin."), Message("output", "Heads"),
           Message("output", " Tails "), Message("output", "Heads")]
NO_DESCRIPTION = [Message("input", "1 + 1"), Message("output", "2"),
                  Message("input", "2 + 2"), Message("output", "4"),
                  Message("input", "3 + 3"), Message("output", "6")]
# The release appends "\n\nDescription: ..." to a prompt that ends with a newline.
SYS = chat_lib.ICL_SYSTEM_PROMPT


def _spans(ep):
  """Token ranges [a, b) of the loss spans (loss_mask[i]: token i has loss)."""
  m = np.concatenate([[0], ep.loss_mask.astype(np.int8), [0]])
  d = np.diff(m)
  return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def test_gemma_episode_renders_as_the_release(gemma_tok):
  chat = chat_lib.ChatTemplate(gemma_tok)
  assert chat.end_of_turn == "<end_of_turn>" and chat.stop == "<end_of_turn>"
  text = "".join(t for t, _ in format_episode(EPISODE, chat))
  expected = (
      "<start_of_turn>user\n" + SYS + "\n\nDescription: Flip a coin.\n\nGenerate<end_of_turn>\n"
      "<start_of_turn>model\nHeads<end_of_turn>\n"
      "<start_of_turn>user\nGenerate<end_of_turn>\n"
      "<start_of_turn>model\nTails<end_of_turn>\n"
      "<start_of_turn>user\nGenerate<end_of_turn>\n"
      "<start_of_turn>model\nHeads<end_of_turn>\n")
  assert text == expected  # No <bos> in the text: callers add the BOS id.
  ep = tokenize_episode(EPISODE, chat, gemma_tok)
  assert not ep.mismatch and ep.tokens[0] == gemma_tok.bos_id
  assert list(ep.tokens[1:]).count(gemma_tok.bos_id) == 0
  # Every output has a loss span (a description): its content (trimmed by
  # Gemma's template) and the end-of-turn token, nothing else.
  got = [gemma_tok.decode(ep.tokens[a:b]) for a, b in _spans(ep)]
  assert got == ["Heads<end_of_turn>", "Tails<end_of_turn>", "Heads<end_of_turn>"]
  assert ep.num_examples == 3


def test_no_description_first_output_is_context_in_the_system_message(gemma_tok):
  chat = chat_lib.ChatTemplate(gemma_tok)
  text = "".join(t for t, _ in format_episode(NO_DESCRIPTION, chat, add_generation_prompt=True))
  expected = (
      "<start_of_turn>user\n" + SYS + "\n\nExample Input: 1 + 1\n\nExample Output: 2\n\n"
      "2 + 2<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n"
      "<start_of_turn>user\n3 + 3<end_of_turn>\n<start_of_turn>model\n6<end_of_turn>\n"
      "<start_of_turn>user\nGenerate.<end_of_turn>\n<start_of_turn>model\n")
  assert text == expected
  ep = tokenize_episode(NO_DESCRIPTION, chat, gemma_tok)
  assert [gemma_tok.decode(ep.tokens[a:b]) for a, b in _spans(ep)] == [
      "4<end_of_turn>", "6<end_of_turn>"]


def test_chatml_spans_prompts_and_truncation(chatml_tok):
  chat = chat_lib.ChatTemplate(chatml_tok)
  assert chat.end_of_turn == "<|im_end|>" and chatml_tok.bos_id is None
  ep = tokenize_episode(EPISODE, chat, chatml_tok)
  text = chatml_tok.decode(ep.tokens)
  assert text == ("<|im_start|>system\n" + SYS + "\n\nDescription: Flip a coin.<|im_end|>\n"
                  "<|im_start|>user\nGenerate<|im_end|>\n<|im_start|>assistant\nHeads<|im_end|>\n"
                  "<|im_start|>user\nGenerate<|im_end|>\n<|im_start|>assistant\n Tails <|im_end|>\n"
                  "<|im_start|>user\nGenerate<|im_end|>\n<|im_start|>assistant\nHeads<|im_end|>\n")
  assert [chatml_tok.decode(ep.tokens[a:b]) for a, b in _spans(ep)] == [
      "Heads<|im_end|>", " Tails <|im_end|>", "Heads<|im_end|>"]
  # Truncation keeps whole examples and is a prefix of the whole episode.
  cut = tokenize_episode(EPISODE, chat, chatml_tok, max_tokens=len(ep.tokens) - 5)
  assert cut.truncated and cut.num_examples == 2
  assert list(cut.tokens) == list(ep.tokens[:len(cut.tokens)])
  # A distributional prompt: the release's system prompt, the question as a
  # user turn, then the generation prompt; options follow with no prefix.
  dist = chat.with_prompting("distributional")
  prompt = "".join(t for t, _ in format_episode(
      [Message("description", "A survey."), Message("input", "Pick one.")], dist,
      add_generation_prompt=True))
  assert prompt == ("<|im_start|>system\nGiven the description and an input, respond with just "
                    "an output.\n\nDescription: A survey.<|im_end|>\n<|im_start|>user\nPick one."
                    "<|im_end|>\n<|im_start|>assistant\n")
  assert dist.content_prefix == ""


def test_diversity_prompts_put_everything_in_the_system_message(gemma_tok):
  chat = chat_lib.ChatTemplate(gemma_tok).with_prompting("diversity")
  msgs = [Message("description", "A US state."), Message("output", "Ohio"),
          Message("output", "Utah")]
  got = "".join(t for t, _ in format_episode(msgs, chat, add_generation_prompt=True))
  assert got == ("<start_of_turn>user\nRespond with JUST the requested output, nothing else."
                 "\n\nA US state.\n\nExample Output: Ohio\n\nExample Output: Utah\n\n"
                 "Now generate an output based on the description and examples.<end_of_turn>\n"
                 "<start_of_turn>model\n")
  only = "".join(t for t, _ in format_episode(msgs[:1], chat, add_generation_prompt=True))
  assert only.endswith("A US state.\n\nGenerate something that fits this description."
                       "<end_of_turn>\n<start_of_turn>model\n")


def test_qwen3_think_block_opens_every_turn_as_the_release(tmp_path, caplog):
  tok = load_tokenizer(write_tokenizer(str(tmp_path), QWEN3_LIKE, bos=False))
  chat = chat_lib.ChatTemplate(tok)
  ep = tokenize_episode(EPISODE[:3], chat, tok)
  think = "<|im_start|>assistant\n<think>\n\n</think>\n\n"
  assert tok.decode(ep.tokens) == (
      "<|im_start|>system\n" + SYS + "\n\nDescription: Flip a coin.<|im_end|>\n"
      "<|im_start|>user\nGenerate<|im_end|>\n" + think + "Heads<|im_end|>\n"
      "<|im_start|>user\nGenerate<|im_end|>\n" + think + " Tails <|im_end|>\n")
  assert [tok.decode(ep.tokens[a:b]) for a, b in _spans(ep)] == [
      "Heads<|im_end|>", " Tails <|im_end|>"]
  assert "renders earlier assistant turns differently" in caplog.text
  prompt = "".join(t for t, _ in format_episode(EPISODE[:2], chat, add_generation_prompt=True))
  assert prompt.endswith("Heads<|im_end|>\n<|im_start|>user\nGenerate.<|im_end|>\n" + think)


def test_templates_that_cannot_be_split_are_clear_errors(tmp_path, sp_tokenizer):
  tok = load_tokenizer(write_tokenizer(str(tmp_path / "bad"), MISMATCHED, bos=False))
  chat = chat_lib.ChatTemplate(tok)
  with pytest.raises(chat_lib.ChatTemplateError, match="not prefix-stable"):
    tokenize_episode(EPISODE, chat, tok)
  with pytest.raises(chat_lib.ChatTemplateError, match="has no chat template"):
    chat_lib.ChatTemplate(sp_tokenizer)
  plain = load_tokenizer(write_tokenizer(str(tmp_path / "plain"), None, bos=False))
  with pytest.raises(chat_lib.ChatTemplateError, match="has no chat template"):
    chat_lib.ChatTemplate(plain)


def test_training_refuses_the_chat_template():
  with pytest.raises(ValueError, match="for evaluating instruct comparators"):
    templates.get_template("chat")
  from spectrax.training import run_config  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  c = ml_collections.ConfigDict({"data": {"template": "chat"}})
  with pytest.raises(run_config.ConfigError, match="for evaluating instruct comparators"):
    run_config.validate(c)


# -- end to end: spectrax.score and spectrax.evaluate on a tiny HF model -----


@pytest.fixture(scope="module")
def chat_hf_dir(tmp_path_factory):
  torch = pytest.importorskip("torch")
  path = str(tmp_path_factory.mktemp("chat_hf"))
  write_tokenizer(path, GEMMA3)
  cfg = transformers.LlamaConfig(vocab_size=272, hidden_size=32, intermediate_size=64,
                                 num_attention_heads=4, num_key_value_heads=2,
                                 num_hidden_layers=1, max_position_embeddings=4096,
                                 tie_word_embeddings=False)
  torch.manual_seed(0)
  transformers.AutoModelForCausalLM.from_config(cfg).eval().save_pretrained(path)
  return path


def test_score_with_the_chat_template_matches_one_forward(chat_hf_dir, tmp_path):
  torch = pytest.importorskip("torch")
  from cli_runs import run_cli  # pylint: disable=g-import-not-at-top
  messages = [{"role": "description", "content": "A colour."},
              {"role": "input", "content": "Pick one."}]
  lines = [{"id": "q", "messages": messages, "template": "chat", "options": ["red", "blue"],
            "target": [0.5, 0.5]}]
  req = tmp_path / "req.jsonl"
  req.write_text("".join(json.dumps(x) + "\n" for x in lines))
  out = tmp_path / "scores.jsonl"
  proc = run_cli("spectrax.score", f"--input={req}", f"--output={out}",
                 f"--hf_checkpoint={chat_hf_dir}", "--buckets=2048", "--no_progress")
  assert proc.returncode == 0, proc.stderr[-3000:]
  got = json.loads(out.read_text().splitlines()[0])
  # The reference: the prompt the release's chat format gives, scored by torch.
  hf = transformers.AutoTokenizer.from_pretrained(chat_hf_dir)
  model = transformers.AutoModelForCausalLM.from_pretrained(chat_hf_dir).eval()
  prompt = hf.apply_chat_template(
      [{"role": "system", "content": SYS + "\n\nDescription: A colour."},
       {"role": "user", "content": "Pick one."}], tokenize=False, add_generation_prompt=True)
  assert prompt.startswith("<bos><start_of_turn>user\n")
  for option, logprob in zip(["red", "blue"], got["logprobs"]):
    ids = hf(prompt + option, add_special_tokens=False)["input_ids"]
    n = len(hf(prompt, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
      logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    want = sum(float(logp[i - 1, ids[i]]) for i in range(n, len(ids)))
    assert logprob == pytest.approx(want, abs=2e-3)
  assert "boundary_mismatch" not in got


def test_evaluate_with_the_chat_template_end_to_end(chat_hf_dir, eval_suite, tmp_path):
  from cli_runs import run_cli  # pylint: disable=g-import-not-at-top
  out = tmp_path / "eval"
  proc = run_cli("spectrax.evaluate", "--suite=all", f"--suite_dir={eval_suite.path}",
                 f"--out={out}", f"--model=it=hf:{chat_hf_dir}#chat", "--num_episodes=2",
                 "--num_capability_episodes=1", "--num_questions=2", "--num_samples=2",
                 "--max_tokens=3000", "--sample_batch_size=8")
  assert proc.returncode == 0, proc.stderr[-3000:]
  metrics = json.loads((out / "metrics.json").read_text())
  result = metrics["models"]["it"] if "models" in metrics else metrics["it"]
  assert result["_model"]["template"] == "chat"
  for suite in ("steerability", "distributional", "diversity"):
    assert result[suite]["template"] == "chat"
  steer = result["steerability"]["tasks"]
  assert all(t["mismatch"] == 0 for t in steer.values())
  assert any(t["all_outputs"]["num_outputs"] for t in steer.values())


def test_evaluate_refuses_chat_for_a_tokenizer_without_one(eval_suite, tmp_path):
  from cli_runs import assert_one_error_line, run_cli  # pylint: disable=g-import-not-at-top
  torch = pytest.importorskip("torch")
  path = str(tmp_path / "base")
  write_tokenizer(path, None)
  cfg = transformers.LlamaConfig(vocab_size=272, hidden_size=16, intermediate_size=32,
                                 num_attention_heads=2, num_key_value_heads=1,
                                 num_hidden_layers=1, max_position_embeddings=512)
  torch.manual_seed(0)
  transformers.AutoModelForCausalLM.from_config(cfg).save_pretrained(path)
  proc = run_cli("spectrax.evaluate", "--suite=distributional",
                 f"--suite_dir={eval_suite.path}", f"--out={tmp_path / 'eval'}",
                 f"--model=base=hf:{path}", "--template=chat", "--num_questions=1")
  assert_one_error_line(proc, "model 'base'", "has no chat template")
  assert os.path.exists(path)
