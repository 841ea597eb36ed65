"""Tokenizers: an HF tokenizer directory, a SentencePiece `.model`, or the
default SentencePiece model trained on the built suite.

All share one small interface (`Tokenizer`) so episodes, the scorer and the
sampler never care which kind they hold. Pure Python + numpy: no jax.
"""

from __future__ import annotations

import abc
import io
import os
from collections.abc import Iterable, Sequence

# A newline is a byte-fallback or single piece in SentencePiece models, so it
# never merges with the text after it; see `Tokenizer.encode`.
_ANCHOR = "\n"
_SP_SPACE = "\u2581"  # SentencePiece's visible space, "▁".


class Tokenizer(abc.ABC):
  """Text ⇄ ids without special-token handling; BOS is added by callers."""

  name: str = ""

  @property
  @abc.abstractmethod
  def vocab_size(self) -> int:
    ...

  @property
  @abc.abstractmethod
  def bos_id(self) -> int | None:
    """The BOS id if this tokenizer's models expect one, else None."""

  @property
  @abc.abstractmethod
  def eos_id(self) -> int | None:
    ...

  @abc.abstractmethod
  def _encode(self, text: str) -> list[int]:
    """Ids of `text` as if it started a document (no BOS/EOS)."""

  @abc.abstractmethod
  def id_to_piece(self, token_id: int) -> str:
    ...

  @abc.abstractmethod
  def piece_to_id(self, piece: str) -> int | None:
    """The id of a whole vocabulary entry, or None if it is not one."""

  @abc.abstractmethod
  def decode(self, ids: Sequence[int]) -> str:
    ...

  def __init__(self):
    self._dummy_prefix: bool | None = None
    self._anchor_ids: list[int] | None = None

  @property
  def adds_dummy_prefix(self) -> bool:
    """Whether encoding prepends "▁" (SentencePiece `add_dummy_prefix`)."""
    if self._dummy_prefix is None:
      ids = self._encode("a")
      self._dummy_prefix = bool(ids) and self.id_to_piece(ids[0]).startswith(
          _SP_SPACE)
    return self._dummy_prefix

  def encode(self, text: str, *, continuation: bool = False) -> list[int]:
    """Token ids of `text` (no BOS).

    Args:
      text: the text.
      continuation: the text continues a document (it is not its start). For
        SentencePiece tokenizers that prepend a dummy "▁" to every call this
        encodes `"\\n" + text` and removes the newline's ids, so a segment
        tokenised alone gets the same ids it has inside the joined episode.
    """
    if not text:
      return []
    if not (continuation and self.adds_dummy_prefix):
      return self._encode(text)
    if self._anchor_ids is None:
      self._anchor_ids = self._encode(_ANCHOR)
    ids = self._encode(_ANCHOR + text)
    n = len(self._anchor_ids)
    if ids[:n] == self._anchor_ids:
      return ids[n:]
    return self._encode(text)  # Counted as a mismatch by the caller.

  def single_token_id(self, text: str) -> int | None:
    """The id if `text` is exactly one token in this tokenizer, else None."""
    token_id = self.piece_to_id(text)
    if token_id is None:
      return None
    ids = self.encode(text, continuation=True)
    return token_id if ids == [token_id] else None

  def require_single_tokens(self, tokens: Iterable[str], template: str) -> None:
    """docs/method.md#tokenisation-and-the-loss-mask: refuse to train when a template's special token splits."""
    bad = []
    for tok in tokens:
      if self.single_token_id(tok) is None:
        pieces = [self.id_to_piece(i) for i in self.encode(tok,
                                                           continuation=True)]
        bad.append(f"{tok!r} -> {pieces}")
    if bad:
      raise ValueError(
          f"tokenizer {self.name!r} splits special tokens of template "
          f"{template!r}: {'; '.join(bad)}. Use the tokenizer of the model "
          "family the template is for (e.g. gemma with a Gemma tokenizer), "
          "add the tokens to the tokenizer, or use template='colon'.")


class SentencePieceTokenizer(Tokenizer):
  """A raw SentencePiece `.model` file (use an HF directory when you have one:
  its tokenizer.json is the truth for that model)."""

  def __init__(self, model_file: str):
    super().__init__()
    import sentencepiece as spm  # pylint: disable=g-import-not-at-top
    if not os.path.isfile(model_file):
      raise FileNotFoundError(f"SentencePiece model not found: {model_file}")
    self._sp = spm.SentencePieceProcessor(model_file=model_file)
    self.name = model_file

  @property
  def vocab_size(self) -> int:
    return self._sp.get_piece_size()

  @property
  def bos_id(self) -> int | None:
    i = self._sp.bos_id()
    return None if i < 0 else i

  @property
  def eos_id(self) -> int | None:
    i = self._sp.eos_id()
    return None if i < 0 else i

  def _encode(self, text: str) -> list[int]:
    return self._sp.encode(text)

  def id_to_piece(self, token_id: int) -> str:
    return self._sp.id_to_piece(token_id)

  def piece_to_id(self, piece: str) -> int | None:
    i = self._sp.piece_to_id(piece)
    if i == self._sp.unk_id() and piece != self._sp.id_to_piece(i):
      return None
    return i

  def decode(self, ids: Sequence[int]) -> str:
    return self._sp.decode(list(ids))


class HFTokenizer(Tokenizer):
  """An HF tokenizer directory (tokenizer.json or tokenizer.model), offline."""

  def __init__(self, directory: str):
    super().__init__()
    from transformers import AutoTokenizer  # pylint: disable=g-import-not-at-top
    self._tok = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    self.name = directory
    self._vocab = self._tok.get_vocab()
    # A tokenizer that does not add BOS by itself (Qwen) has no BOS for its
    # model even when a bos_token string is configured.
    probe = self._tok("a", add_special_tokens=True)["input_ids"]
    bos = self._tok.bos_token_id
    self._bos = bos if bos is not None and probe and probe[0] == bos else None

  @property
  def vocab_size(self) -> int:
    return len(self._tok)

  @property
  def bos_id(self) -> int | None:
    return self._bos

  @property
  def eos_id(self) -> int | None:
    return self._tok.eos_token_id

  def _encode(self, text: str) -> list[int]:
    return self._tok(text, add_special_tokens=False)["input_ids"]

  def id_to_piece(self, token_id: int) -> str:
    return self._tok.convert_ids_to_tokens(int(token_id))

  def piece_to_id(self, piece: str) -> int | None:
    return self._vocab.get(piece)

  def decode(self, ids: Sequence[int]) -> str:
    return self._tok.decode(list(ids))

  # The `chat` template's needs (spectrax/data/chat_template.py).

  @property
  def chat_template(self) -> str | None:
    """The directory's Jinja chat template, if it has one."""
    return getattr(self._tok, "chat_template", None)

  @property
  def bos_token(self) -> str | None:
    return self._tok.bos_token

  def added_tokens(self) -> list[str]:
    """The tokenizer's added (special and user-defined) token strings."""
    return list(self._tok.get_added_vocab())

  def apply_chat_template(self, conversation: list[dict[str, str]], *,
                          add_generation_prompt: bool, **variables) -> str:
    """The chat template's text of `conversation` (offline; nothing tokenised)."""
    return self._tok.apply_chat_template(conversation, tokenize=False,
                                         add_generation_prompt=add_generation_prompt,
                                         **variables)


def load_tokenizer(path: str) -> Tokenizer:
  """Loads a tokenizer from an HF directory or a SentencePiece `.model` file."""
  if os.path.isdir(path):
    has = set(os.listdir(path))
    if has & {"tokenizer.json", "tokenizer_config.json", "tokenizer.model"}:
      return HFTokenizer(path)
    raise FileNotFoundError(
        f"{path} is a directory without tokenizer.json, tokenizer_config.json "
        "or tokenizer.model; point `tokenizer` at an HF model directory or a "
        "SentencePiece .model file.")
  if os.path.isfile(path):
    try:
      return SentencePieceTokenizer(path)
    except (RuntimeError, OSError) as e:
      raise ValueError(f"{path} is not a SentencePiece model file: {e}") from e
  raise FileNotFoundError(
      f"no tokenizer at {path!r}: expected an HF model directory or a "
      "SentencePiece .model file (config field `tokenizer`).")


def train_sentencepiece(texts: Iterable[str], model_file: str, *,
                        vocab_size: int = 2048,
                        special_tokens: Sequence[str] = ()) -> str:
  """Trains a small byte-fallback BPE SentencePiece model.

  The special tokens become user-defined symbols (always single tokens). No
  dummy prefix, so a segment tokenised alone equals its tokens in context.

  Returns:
    `model_file`, the path written.
  """
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  model = io.BytesIO()
  try:
    _train(spm, texts, model, vocab_size, special_tokens)
  except RuntimeError as e:
    if "Vocabulary size is smaller than required_chars" in str(e):
      raise ValueError(
          f"vocab_size={vocab_size} is too small for this corpus: byte "
          "fallback needs 256 byte pieces plus every distinct character; "
          f"raise vocab_size. SentencePiece said: {e}") from e
    raise
  os.makedirs(os.path.dirname(os.path.abspath(model_file)), exist_ok=True)
  with open(model_file, "wb") as f:
    f.write(model.getvalue())
  return model_file


def _train(spm, texts, model, vocab_size, special_tokens):
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(texts),
      model_writer=model,
      vocab_size=vocab_size,
      model_type="bpe",
      byte_fallback=True,
      hard_vocab_limit=False,
      add_dummy_prefix=False,
      remove_extra_whitespaces=False,
      normalization_rule_name="identity",
      split_digits=True,
      user_defined_symbols=list(special_tokens),
      bos_id=1, eos_id=2, unk_id=0, pad_id=-1,
      train_extremely_large_corpus=False,
      minloglevel=2,
  )


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".gguf", ".ckpt")
_MAX_TOKENIZER_FILE = 64 << 20


def snapshot_tokenizer(path: str | os.PathLike, dest: str | os.PathLike) -> str:
  """Copies a tokenizer (a `.model` file, or an HF directory's tokenizer files
  without its weights) into the directory `dest`, so a run directory is
  self-contained; `dest` then holds exactly that copy.

  On a local disk the files are written (and fsynced) into a temporary
  directory next to `dest`, which then replaces `dest` by renames: a crash
  leaves the old copy or the new one, never half of one (or, in the instant
  between the two renames, none, which the next start writes). A `dest` that
  holds the same files already is left alone. Either side may be a bucket
  (`gs://...`, through `etils.epath`); there each file is one atomic object
  write, but a set of objects cannot be swapped at once.

  Returns:
    The copy's path, as `load_tokenizer` takes it.
  """
  # pylint: disable-next=g-import-not-at-top
  import shutil
  from etils import epath  # pylint: disable=g-import-not-at-top
  src, dest = epath.Path(path), epath.Path(dest)
  if src.is_file():
    files = {src.name: src}
    copy = os.fspath(dest / src.name)
  else:
    files = {f.name: f for f in sorted(src.iterdir())
             if f.is_file() and not f.name.endswith(_WEIGHT_SUFFIXES)
             and not f.name.endswith(".index.json")
             and f.stat().length <= _MAX_TOKENIZER_FILE}
    copy = os.fspath(dest)
  contents = {name: f.read_bytes() for name, f in files.items()}
  if dest.is_dir() and sorted(f.name for f in dest.iterdir()) == sorted(contents) and all(
      (dest / name).read_bytes() == data for name, data in contents.items()):
    return copy
  if "://" in os.fspath(dest):
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
      (dest / name).write_bytes(data)
    return copy
  parent, name = os.path.dirname(os.path.abspath(dest)), dest.name
  os.makedirs(parent, exist_ok=True)
  for left in os.listdir(parent):  # A crash's leftovers (one training per workdir).
    if left.startswith((f"{name}.tmp.", f"{name}.old.")):
      shutil.rmtree(os.path.join(parent, left))
  tmp = os.path.join(parent, f"{name}.tmp.{os.getpid()}")
  os.mkdir(tmp)
  for file_name, data in contents.items():
    with open(os.path.join(tmp, file_name), "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
  old = os.path.join(parent, f"{name}.old.{os.getpid()}")
  if dest.exists():
    os.replace(dest, old)
  os.replace(tmp, dest)
  if os.path.exists(old):
    shutil.rmtree(old)
  return copy
