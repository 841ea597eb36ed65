"""Tokenizers: SentencePiece training and loading, HF directories, the
continuation rule, special-token checks and snapshots."""

import io
import os

import pytest

from spectrax.data import templates
from spectrax.data.tokenizer import (HFTokenizer, SentencePieceTokenizer,
                                     load_tokenizer, snapshot_tokenizer,
                                     train_sentencepiece)

CORPUS = ["the cat sat on the mat", "a dog ran to the cat",
          "Heads Tails Heads"] * 50


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("tokenizers")


@pytest.fixture(scope="module")
def with_specials(models_dir):
  path = train_sentencepiece(CORPUS, str(models_dir / "specials.model"),
                             vocab_size=300,
                             special_tokens=templates.all_special_tokens())
  return load_tokenizer(path)


@pytest.fixture(scope="module")
def plain(models_dir):
  return load_tokenizer(train_sentencepiece(
      CORPUS, str(models_dir / "plain.model"), vocab_size=300))


@pytest.fixture(scope="module")
def dummy_prefix(models_dir):
  """A model that prepends "▁" to every call, like Llama 2 / Mistral's."""
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(CORPUS), model_writer=model, vocab_size=300,
      model_type="bpe", byte_fallback=True, add_dummy_prefix=True,
      remove_extra_whitespaces=False, normalization_rule_name="identity",
      hard_vocab_limit=False, minloglevel=2)
  path = models_dir / "dummy.model"
  path.write_bytes(model.getvalue())
  return load_tokenizer(str(path))


def _pieces(tok, ids):
  return [tok.id_to_piece(i) for i in ids]


def test_trained_model_keeps_special_tokens_whole(with_specials):
  tok = with_specials
  assert isinstance(tok, SentencePieceTokenizer)
  assert (tok.vocab_size, tok.bos_id, tok.eos_id) == (300, 1, 2)
  # User-defined symbols follow <unk>, <s>, </s>, in the order given.
  specials = templates.all_special_tokens()
  assert [tok.piece_to_id(s) for s in specials] == list(range(3, 10))
  for i, s in enumerate(specials):
    assert tok.single_token_id(s) == 3 + i
    # Whole even when glued to text on both sides.
    ids = tok.encode("cat" + s + "cat")
    assert ids[len(tok.encode("cat")):][:1] == [3 + i]
  for t in templates.TEMPLATES.values():
    tok.require_single_tokens(t.special_tokens, t.name)


def test_trained_model_has_no_dummy_prefix_and_round_trips(with_specials):
  tok = with_specials
  assert not tok.adds_dummy_prefix
  text = "the cat<end_of_turn>\nHeads  Tails 42"
  assert tok.decode(tok.encode(text)) == text
  # Characters the corpus never had fall back to bytes, nothing is <unk>.
  assert _pieces(tok, tok.encode("42\n")) == ["<0x34>", "<0x32>", "<0x0A>"]
  # Without a dummy prefix a continuation is encoded as it is.
  assert tok.encode("cat", continuation=True) == tok.encode("cat")


def test_conftest_tokenizer_has_every_template_token(sp_tokenizer):
  for t in templates.TEMPLATES.values():
    sp_tokenizer.require_single_tokens(t.special_tokens, t.name)
    for s in t.special_tokens:
      assert sp_tokenizer.encode(s, continuation=True) == [
          sp_tokenizer.piece_to_id(s)]


def test_real_mistral_tokenizer(mistral_tokenizer_path):
  tok = load_tokenizer(mistral_tokenizer_path)
  assert (tok.vocab_size, tok.bos_id, tok.eos_id) == (32000, 1, 2)
  assert tok.adds_dummy_prefix
  with pytest.raises(ValueError, match="splits special tokens of template "
                     "'gemma'.*'<start_of_turn>' -> "):
    tok.require_single_tokens(templates.TEMPLATES["gemma"].special_tokens,
                              "gemma")


def test_without_the_tokens_the_template_is_refused(plain):
  with pytest.raises(ValueError) as e:
    plain.require_single_tokens(templates.TEMPLATES["qwen"].special_tokens,
                                "qwen")
  name = plain.name
  assert str(e.value) == (
      f"tokenizer {name!r} splits special tokens of template 'qwen': "
      "'<|im_start|>' -> ['<0x3C>', '<0x7C>', 'i', 'm', '<0x5F>', 's', 't', "
      "'a', 'r', 't', '<0x7C>', '<0x3E>']; '<|im_end|>' -> ['<0x3C>', "
      "'<0x7C>', 'i', 'm', '<0x5F>', 'e', 'n', 'd', '<0x7C>', '<0x3E>']. Use "
      "the tokenizer of the model family the template is for (e.g. gemma "
      "with a Gemma tokenizer), add the tokens to the tokenizer, or use "
      "template='colon'.")
  assert plain.single_token_id("<|im_end|>") is None
  # Not a vocabulary entry: None, not <unk>'s id.
  assert plain.piece_to_id("<|im_end|>") is None
  assert plain.piece_to_id("<unk>") == 0


def test_continuation_drops_the_dummy_prefix(dummy_prefix):
  tok = dummy_prefix
  assert tok.adds_dummy_prefix
  assert _pieces(tok, tok.encode("cat")) == ["▁cat"]
  assert _pieces(tok, tok.encode("cat", continuation=True)) == ["c", "at"]
  # Segments encoded apart give the ids of the joined text.
  assert (tok.encode("the") + tok.encode(" cat sat", continuation=True) ==
          tok.encode("the cat sat"))
  assert _pieces(tok, tok.encode("the cat sat")) == ["▁the", "▁cat", "▁s",
                                                     "at"]
  assert tok.encode("", continuation=True) == []


def test_too_small_a_vocabulary_says_what_to_raise(models_dir):
  with pytest.raises(ValueError, match=(
      r"^vocab_size=20 is too small for this corpus: byte fallback needs 256 "
      r"byte pieces plus every distinct character; raise vocab_size\. ")):
    train_sentencepiece(CORPUS, str(models_dir / "small.model"), vocab_size=20)
  assert not os.path.exists(models_dir / "small.model")


def _write_hf(directory, with_bos):
  """A word-level HF tokenizer; `with_bos`: its post-processor adds <s>."""
  import transformers  # pylint: disable=g-import-not-at-top
  from tokenizers import Tokenizer, models, pre_tokenizers, processors  # pylint: disable=g-import-not-at-top
  vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<|im_end|>": 3, "Heads": 4,
           "Tails": 5, "coin": 6}
  tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
  tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  if with_bos:
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", 1)])
  transformers.PreTrainedTokenizerFast(
      tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
      eos_token="</s>", additional_special_tokens=["<|im_end|>"]
  ).save_pretrained(str(directory))
  return str(directory)


@pytest.mark.parametrize("with_bos,bos_id", [(True, 1), (False, None)])
def test_hf_directory(tmp_path, with_bos, bos_id):
  tok = load_tokenizer(_write_hf(tmp_path, with_bos))
  assert isinstance(tok, HFTokenizer) and tok.name == str(tmp_path)
  # A tokenizer that does not add BOS itself (Qwen) has none for its model,
  # although a bos_token is configured.
  assert (tok.vocab_size, tok.bos_id, tok.eos_id) == (7, bos_id, 2)
  assert not tok.adds_dummy_prefix
  assert tok.encode("coin Heads Tails<|im_end|>") == [6, 4, 5, 3]
  assert tok.encode("Heads", continuation=True) == [4]
  assert (tok.id_to_piece(4), tok.piece_to_id("Tails")) == ("Heads", 5)
  assert tok.piece_to_id("Edge") is None
  assert tok.single_token_id("<|im_end|>") == 3


def test_load_tokenizer_errors(tmp_path, with_specials):
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError) as e:
    load_tokenizer(str(tmp_path / "empty"))
  assert str(e.value) == (
      f"{tmp_path / 'empty'} is a directory without tokenizer.json, "
      "tokenizer_config.json or tokenizer.model; point `tokenizer` at an HF "
      "model directory or a SentencePiece .model file.")
  with pytest.raises(FileNotFoundError) as e:
    load_tokenizer(str(tmp_path / "nowhere.model"))
  assert str(e.value) == (
      f"no tokenizer at {str(tmp_path / 'nowhere.model')!r}: expected an HF "
      "model directory or a SentencePiece .model file (config field "
      "`tokenizer`).")
  (tmp_path / "notes.txt").write_text("not a model")
  with pytest.raises(ValueError, match=f"^{tmp_path / 'notes.txt'} is not a "
                     "SentencePiece model file: "):
    load_tokenizer(str(tmp_path / "notes.txt"))
  # A file path loads as SentencePiece.
  assert load_tokenizer(with_specials.name).encode("Heads") == \
      with_specials.encode("Heads")


def test_snapshot_copies_a_model_file(tmp_path, with_specials):
  copy = snapshot_tokenizer(with_specials.name, str(tmp_path / "run"))
  assert copy == str(tmp_path / "run" / "specials.model")
  with open(copy, "rb") as a, open(with_specials.name, "rb") as b:
    assert a.read() == b.read()


def test_snapshot_of_an_hf_directory_leaves_weights(tmp_path):
  src = tmp_path / "hf"
  _write_hf(src, with_bos=True)
  for name in ("config.json", "model.safetensors", "pytorch_model.bin",
               "model-00001-of-00002.safetensors",
               "model.safetensors.index.json"):
    (src / name).write_text("{}")
  with open(src / "huge.json", "wb") as f:  # Over 64 MiB (sparse).
    f.truncate((64 << 20) + 1)
  (src / "sub").mkdir()
  copy = snapshot_tokenizer(str(src), str(tmp_path / "run"))
  assert copy == str(tmp_path / "run")
  assert sorted(os.listdir(copy)) == ["config.json", "tokenizer.json",
                                      "tokenizer_config.json"]
  assert load_tokenizer(copy).encode("coin Tails") == [6, 5]


def test_snapshot_replaces_the_copy_whole_or_not_at_all(tmp_path, monkeypatch):
  """A crash while copying leaves the previous copy as it was; a finished
  snapshot holds exactly the new files; the same files are not rewritten."""
  from etils import epath  # pylint: disable=g-import-not-at-top
  old, new = tmp_path / "old", tmp_path / "new"
  old.mkdir()
  new.mkdir()
  (old / "tokenizer.json").write_text("old")
  (old / "vocab.txt").write_text("old vocab")
  (new / "tokenizer.json").write_text("new")
  (new / "merges.txt").write_text("new merges")
  dest = tmp_path / "run" / "tokenizer"
  assert snapshot_tokenizer(epath.Path(old), epath.Path(dest)) == str(dest)

  def contents():
    return {p.name: p.read_text() for p in dest.iterdir()}
  assert contents() == {"tokenizer.json": "old", "vocab.txt": "old vocab"}
  inode = os.stat(dest / "tokenizer.json").st_ino
  snapshot_tokenizer(str(old), str(dest))  # the same files: left alone
  assert os.stat(dest / "tokenizer.json").st_ino == inode

  real_fsync, calls = os.fsync, []

  def crash_on_the_second_file(fd):
    calls.append(fd)
    if len(calls) == 2:
      raise OSError("disk full")
    real_fsync(fd)
  monkeypatch.setattr(os, "fsync", crash_on_the_second_file)
  with pytest.raises(OSError, match="disk full"):
    snapshot_tokenizer(str(new), str(dest))
  monkeypatch.setattr(os, "fsync", real_fsync)
  assert contents() == {"tokenizer.json": "old", "vocab.txt": "old vocab"}
  snapshot_tokenizer(str(new), str(dest))  # also clears the crash's leftovers
  assert contents() == {"tokenizer.json": "new", "merges.txt": "new merges"}
  assert sorted(os.listdir(dest.parent)) == ["tokenizer"]


def test_snapshot_into_a_bucket(tmp_path, memory_bucket):
  from etils import epath  # pylint: disable=g-import-not-at-top
  (tmp_path / "t.model").write_bytes(b"model bytes")
  dest = f"{memory_bucket}/run/tokenizer"
  assert snapshot_tokenizer(str(tmp_path / "t.model"), dest) == f"{dest}/t.model"
  assert epath.Path(dest, "t.model").read_bytes() == b"model bytes"
