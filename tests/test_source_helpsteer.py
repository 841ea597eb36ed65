"""HelpSteer2 converter (data_pipelines/sources/helpsteer.py)."""

from __future__ import annotations

import ast
import gzip
import json
import os

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import helpsteer

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
(SPEC,) = helpsteer.TASKS
TIE = '{"prompt": "Say hi.", "response1": "Hi!", "response2": "Hello!"}'


def _build(raw_dir=RAW, seed=0):
  out = list(SPEC.generate(BuildContext(seed=seed, raw_dir=raw_dir)))
  for inst in out:
    inst.validate(SPEC.name)
  return out


@pytest.fixture(scope="module")
def users():
  return _build()


def test_spec():
  assert (SPEC.suite_split, SPEC.mean_k, SPEC.fixed_k,
          SPEC.episodes_per_instance, SPEC.chunk_all_rows, SPEC.p_desc) == (
              "train", None, 40, 1, False, 0.6)
  assert SPEC.raw_files[0].download.hf_filename == "train.jsonl.gz"


def test_users_and_pairs(users):
  assert len(users) == 500
  assert [u.id for u in users[:2]] == ["user0", "user1"]
  # 5 prompts have two responses; the one-response prompt is left out, and
  # with fewer than 40 pairs every user judges all of them.
  for user in users[:20]:
    assert len(user.rows) == 5
    prompts = {json.loads(r.input)["prompt"] for r in user.rows}
    assert "A prompt with only one response." not in prompts
    assert {r.output for r in user.rows} <= {"1", "2"}
  # A tie always goes to response 2.
  assert all(r.output == "2" for u in users for r in u.rows if r.input == TIE)


def test_winner_follows_the_weights(users):
  entropy = json.dumps({
      "prompt": "Explain “entropy” in one sentence.",
      "response1": "Entropy measures disorder: the number of microstates "
                   "consistent with a macrostate.",
      "response2": "It's when things get messy, like my room — très "
                   "chaotique!"})
  assert "\\u201centropy\\u201d" in entropy  # ensure_ascii, as json.dumps
  seen = set()
  for user in users:
    w = user.extra["weights"]
    # Ratings (3,3,4,2,1) vs (2,2,3,1,1): 1 wins iff w0+w1+w2+w3 > 0.
    (row,) = [r for r in user.rows if r.input == entropy]
    expected = "1" if w[0] + w[1] + w[2] + w[3] > 0 else "2"
    assert row.output == expected
    seen.add(row.output)
  assert seen == {"1", "2"}


def test_weights_and_descriptions(users):
  for user in users:
    w = user.extra["weights"]
    assert all(-0.05 <= x < 0.95 for x in w[:3])
    assert all(-0.5 <= x < 0.5 for x in w[3:])
  user = users[7]
  assert user.descriptions[:2] == [
      "The following are given: prompt, response1, response2. You must "
      "generate the winner.",
      "The following are ratings from the same individual, who was asked to "
      "judge two language model outputs written by someone else. Generate "
      "the winner."]
  head, shown = user.descriptions[2].split("\nUser descriptionities: ")
  assert head == user.descriptions[1]
  assert ast.literal_eval(shown) == {
      a: round(x, 2) for a, x in zip(helpsteer.ATTRIBUTES,
                                      user.extra["weights"])}
  assert list(ast.literal_eval(shown)) == list(helpsteer.ATTRIBUTES)


def test_seeded(users):
  again = _build()
  assert [u.rows for u in again[:5]] == [u.rows for u in users[:5]]
  other = _build(seed=1)
  assert [u.extra for u in other[:5]] != [u.extra for u in users[:5]]


def test_missing_raw_file(tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(str(tmp_path))
  assert "helpsteer/train.jsonl.gz" in str(e.value)


def _write(tmp_path, lines):
  path = tmp_path / "helpsteer" / "train.jsonl.gz"
  path.parent.mkdir(parents=True)
  with gzip.open(path, "wt", encoding="utf-8") as f:
    f.write("".join(lines))
  return str(tmp_path)


def test_bad_rating_names_file_line_and_column(tmp_path):
  good = {"prompt": "p", "response": "r", **dict.fromkeys(
      helpsteer.ATTRIBUTES, 2)}
  raw = _write(tmp_path, [json.dumps(good) + "\n", "\n",
                          json.dumps({**good, "verbosity": "high"}) + "\n"])
  with pytest.raises(ValueError, match=r"train\.jsonl\.gz, line 3, column "
                     r"'verbosity'"):
    _build(raw)


def test_not_gzip(tmp_path):
  path = tmp_path / "helpsteer" / "train.jsonl.gz"
  path.parent.mkdir()
  path.write_text('{"prompt": "p"}\n')
  with pytest.raises(ValueError, match="cannot read as gzip"):
    _build(str(tmp_path))
