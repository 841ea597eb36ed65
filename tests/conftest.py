"""Shared fixtures: tokenizers made or fetched here, and an 8-device CPU mesh.

jax is configured before anything uses it: 8 CPU devices for sharding tests.
"""

import os
import subprocess
import sys
import zipfile

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax  # noqa: E402  pylint: disable=g-import-not-at-top

jax.config.update("jax_num_cpu_devices", 8)

from absl import flags  # noqa: E402  pylint: disable=g-import-not-at-top

# grain's multiprocessing reads absl flags; pytest never parses them.
flags.FLAGS.mark_as_parsed()

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("SPECTRAX_TEST_CACHE", os.path.join(REPO, ".cache"))
MISTRAL_WHEEL = "mistral-common==1.13.1"
MISTRAL_MEMBER = "mistral_common/data/tokenizer.model.v1"


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: slower tests; CI runs them too")


@pytest.fixture(scope="session")
def mistral_tokenizer_path():
  """The real 32000-token SentencePiece model shipped in mistral-common."""
  path = os.path.join(CACHE, "mistral_tokenizer.model.v1")
  if os.path.exists(path):
    return path
  os.makedirs(CACHE, exist_ok=True)
  wheel_dir = os.path.join(CACHE, "wheels")
  proc = subprocess.run(
      [sys.executable, "-m", "pip", "download", "--no-deps", MISTRAL_WHEEL,
       "-d", wheel_dir, "-q"], capture_output=True, text=True)
  wheels = [f for f in os.listdir(wheel_dir)
            if f.startswith("mistral_common")] if os.path.isdir(wheel_dir) else []
  if proc.returncode != 0 or not wheels:
    pytest.skip(f"package registry unreachable, cannot fetch {MISTRAL_WHEEL}: "
                f"{proc.stderr.strip()[-300:]}")
  with zipfile.ZipFile(os.path.join(wheel_dir, wheels[0])) as z:
    with z.open(MISTRAL_MEMBER) as src, open(path + ".tmp", "wb") as dst:
      dst.write(src.read())
  os.replace(path + ".tmp", path)
  return path


@pytest.fixture(scope="session")
def sp_tokenizer(tmp_path_factory):
  """A small SentencePiece model trained here, with every template's special
  tokens as single pieces."""
  from spectrax import templates  # pylint: disable=g-import-not-at-top
  from spectrax.tokenizer import load_tokenizer, train_sentencepiece  # pylint: disable=g-import-not-at-top
  words = ("Heads Tails coin flips bias draw number red blue ball urn the a "
           "Description Input Output description input output 0 1 2 3 4 5 6 "
           "7 8 9 . , : ? Question Answer").split()
  lines = [" ".join(words[(i * 7) % len(words):] + words[:i % 5])
           for i in range(400)]
  path = str(tmp_path_factory.mktemp("sp") / "test.model")
  train_sentencepiece(lines, path, vocab_size=320,
                      special_tokens=templates.all_special_tokens())
  return load_tokenizer(path)
