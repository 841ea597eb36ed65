"""spectrax/scoring/job.py and python -m spectrax.score: streaming, resumable
JSONL scoring with exact-once output."""

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from cli_runs import assert_one_error_line, foreign_info_lines, run_cli  # noqa: E402
from spectrax.evaluation.metrics import distributional_metrics  # noqa: E402
from spectrax.scoring import job as score  # noqa: E402
from spectrax.models import load_hf  # noqa: E402
from spectrax.scoring.scorer import Scorer  # noqa: E402
from spectrax.data.tokenizer import load_tokenizer  # noqa: E402

WORDS = "Heads Tails red blue ball urn coin the a Output: Description: Input:".split()
VOCAB = 64
BUCKETS = "32,64"


def write_word_tokenizer(directory):
  from tokenizers import Tokenizer, models, pre_tokenizers  # pylint: disable=g-import-not-at-top
  vocab = {w: i for i, w in enumerate(["<unk>"] + WORDS)}
  vocab.update({f"w{i}": i for i in range(len(vocab), VOCAB)})
  tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
  tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(
      directory)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
  cfg = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                                 num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
                                 max_position_embeddings=128, tie_word_embeddings=False)
  torch.manual_seed(0)
  model = transformers.AutoModelForCausalLM.from_config(cfg).eval()
  with torch.no_grad():
    for p in model.parameters():
      p.mul_(4.0)  # Peaked distributions: options really differ.
  path = str(tmp_path_factory.mktemp("hf"))
  model.save_pretrained(path)
  write_word_tokenizer(path)
  return path


@pytest.fixture(scope="module")
def scorer(hf_dir):
  # window=5: several windows and several fsyncs in one file.
  return Scorer(load_hf(hf_dir), load_tokenizer(hf_dir), buckets=(32, 64), rows_per_batch=4,
                window=5)


def make_lines(n=23, seed=0):
  rng = np.random.RandomState(seed)
  lines = []
  for i in range(n):
    options = [" " + w for w in rng.choice(WORDS[:8], rng.randint(2, 5), replace=False)]
    line = {"id": f"q{i}", "options": options}
    if i % 3 == 2:
      line.update(messages=[{"role": "description", "content": "red coin"},
                            {"role": "output", "content": "Heads"}], template="colon")
      line["options"] = [o.strip() for o in options]
    else:
      line["prompt"] = " ".join(rng.choice(WORDS, rng.randint(1, 20)))
    if i % 2:
      line["target"] = list(rng.dirichlet(np.ones(len(options))))
    lines.append(line)
  return lines


def write_jsonl(path, objs, raw=()):
  """``raw``: (index, text) lines inserted verbatim."""
  texts = [json.dumps(o) for o in objs]
  for i, text in raw:
    texts.insert(i, text)
  with open(path, "w") as f:
    f.write("".join(t + "\n" for t in texts))
  return str(path)


def read_jsonl(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def requests_path(tmp_path_factory):
  return write_jsonl(tmp_path_factory.mktemp("in") / "requests.jsonl", make_lines())


@pytest.fixture(scope="module")
def clean(requests_path, scorer, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("clean") / "scores.jsonl")
  counts = score.score_file(requests_path, out, scorer, progress=False, flush_every=4,
                            target_metrics=distributional_metrics)
  assert counts["scored"] == 23 and counts["already_done"] == 0
  return read_jsonl(out)


def assert_same_scores(got, want, atol=0.0):
  assert [g["id"] for g in got] == [w["id"] for w in want]
  for g, w in zip(got, want):
    np.testing.assert_allclose(g["logprobs"], w["logprobs"], atol=atol, rtol=0, err_msg=g["id"])
    assert g["num_tokens"] == w["num_tokens"] and g["greedy"] == w["greedy"]


def test_clean_run_writes_each_id_once_with_metrics(clean):
  assert [c["id"] for c in clean] == [f"q{i}" for i in range(23)]
  for c in clean:
    assert len(c["logprobs"]) == len(c["num_tokens"]) == len(c["greedy"])
    assert all(lp < 0 for lp in c["logprobs"])
  with_target = [c for c in clean if int(c["id"][1:]) % 2]
  assert all(0 <= c["js_divergence"] <= np.log(2) and "coverage" in c for c in with_target)
  assert not any("js_divergence" in c for c in clean if int(c["id"][1:]) % 2 == 0)
  # Options really differ, so equal values are not vacuous.
  assert len({round(lp, 4) for c in clean for lp in c["logprobs"]}) > 20


def test_resume_after_crash_mid_write(clean, requests_path, scorer, tmp_path):
  out = tmp_path / "scores.jsonl"
  half = [json.dumps(c) for c in clean[:11]]
  partial = json.dumps(clean[11])[:25]  # A crash cut the 12th line short.
  out.write_text("".join(h + "\n" for h in half) + partial)
  counts = score.score_file(requests_path, str(out), scorer, progress=False)
  assert counts["already_done"] == 11 and counts["scored"] == 12
  assert_same_scores(read_jsonl(out), clean, atol=1e-5)
  before = out.read_bytes()
  counts = score.score_file(requests_path, str(out), scorer, progress=False)
  assert counts["scored"] == 0 and counts["already_done"] == 23
  assert out.read_bytes() == before


def test_corrupt_complete_line_is_an_error(requests_path, scorer, tmp_path):
  out = tmp_path / "scores.jsonl"
  out.write_text('{"id": "q0"}\nnot json\n')
  with pytest.raises(ValueError, match=r"scores.jsonl:2: not a JSON line"):
    score.score_file(requests_path, str(out), scorer, progress=False)


def test_malformed_line_names_its_number(scorer, tmp_path):
  lines = make_lines(6)
  for raw, reason in [("{not json", "not JSON"),
                      ('{"id": "x", "prompt": "a"}', "'options' must be a non-empty list"),
                      ('{"id": "q1", "prompt": "a", "options": [" b"]}', "id 'q1' repeats line 2"),
                      ('{"id": "t", "prompt": "a", "options": [" b"], "target": [0.5, 0.5]}',
                       "'target' must be a list of 1")]:
    path = write_jsonl(tmp_path / "bad.jsonl", lines, raw=[(3, raw)])
    with pytest.raises(ValueError, match=rf"bad.jsonl:4: {reason}"):
      score.score_file(path, str(tmp_path / "out.jsonl"), scorer, progress=False)
    assert not os.path.exists(tmp_path / "out.jsonl")  # Nothing scored before the error.


def test_skip_bad_counts_and_sets_lines_aside(scorer, tmp_path):
  lines = make_lines(6)
  too_long = {"id": "long", "prompt": " ".join(["red"] * 80), "options": [" a"]}
  path = write_jsonl(tmp_path / "in.jsonl", lines + [too_long], raw=[(2, "{oops"), (5, "[1, 2]")])
  out = tmp_path / "out.jsonl"
  with pytest.raises(score.JobError, match="long.jsonl:1: .*'long'.*left_truncate"):
    score.score_file(write_jsonl(tmp_path / "long.jsonl", [too_long]), str(out), scorer,
                     progress=False)
  counts = score.score_file(path, str(out), scorer, skip_bad=True, progress=False)
  assert counts["rejected"] == 3 and counts["scored"] == 6
  assert [o["id"] for o in read_jsonl(out)] == [f"q{i}" for i in range(6)]
  rejected = read_jsonl(str(out) + ".rejected.jsonl")
  assert [r["line"] for r in rejected] == [3, 6, 9]
  assert rejected[0]["text"] == "{oops" and "expected a JSON object" in rejected[1]["error"]
  assert "'long'" in rejected[2]["error"]
  # A rerun neither rescored nor re-rejects anything.
  counts = score.score_file(path, str(out), scorer, skip_bad=True, progress=False)
  assert counts["scored"] == 0 and len(read_jsonl(str(out) + ".rejected.jsonl")) == 3


def test_parts_per_process_merge_exactly_once(clean, requests_path, scorer, tmp_path):
  out = str(tmp_path / "scores.jsonl")
  for i in range(2):
    score.score_file(requests_path, out, scorer, process_index=i, process_count=2, progress=False)
  assert len(read_jsonl(out + ".part-0-of-2")) == 12
  # Process 1 crashed mid-write once: its partial line is dropped at merge.
  with open(out + ".part-1-of-2", "a") as f:
    f.write('{"id": "q99", "logp')
  assert score.merge_parts(out, 2) == 23
  assert not os.path.exists(out + ".part-0-of-2") and not os.path.exists(out + ".part-1-of-2")
  merged = sorted(read_jsonl(out), key=lambda o: int(o["id"][1:]))
  assert_same_scores(merged, clean, atol=1e-5)
  assert score.merge_parts(out, 2) == 0


def test_a_line_that_is_not_utf8_is_malformed(scorer, tmp_path):
  path = tmp_path / "latin1.jsonl"
  path.write_bytes(b"".join(json.dumps(o).encode() + b"\n" for o in make_lines(3)) +
                   '{"id": "é", "prompt": "a", "options": [" b"]}\n'.encode("latin-1"))
  with pytest.raises(score.JobError, match=r"latin1.jsonl:4: not UTF-8 text"):
    score.score_file(str(path), str(tmp_path / "out.jsonl"), scorer, progress=False)
  counts = score.score_file(str(path), str(tmp_path / "out.jsonl"), scorer, skip_bad=True,
                            progress=False)
  assert counts["scored"] == 3 and counts["rejected"] == 1


def test_cli_with_hf_checkpoint(clean, requests_path, hf_dir, tmp_path):
  out = str(tmp_path / "scores.jsonl")
  proc = run_cli("spectrax.score", f"--input={requests_path}", f"--output={out}",
                 f"--hf_checkpoint={hf_dir}", f"--buckets={BUCKETS}", "--no_progress",
                 SPECTRAX_CPU_DEVICES="8")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert not foreign_info_lines(proc.stderr), proc.stderr[-3000:]
  # 8 CPU devices, FSDP-sharded weights and rows: the same scores (and
  # metrics) as one device up to float32 reduction order.
  got = read_jsonl(out)
  assert_same_scores(got, clean, atol=1e-4)
  assert [("js_divergence" in g) for g in got] == [("js_divergence" in c) for c in clean]
  summary = json.loads(proc.stdout.strip().splitlines()[-1])
  assert summary["scored"] == 23


@pytest.mark.parametrize("flags, parts", [
    (["--input={bad}"], ["bad.jsonl:2: not JSON", "--skip_bad"]),
    (["--input={tmp}/none.jsonl"], ["--input=", "none.jsonl: no such file"]),
    (["--input={bad}", "--workdir={tmp}"],
     ["give exactly one of --hf_checkpoint=DIR and --workdir=DIR"]),
    (["--input={bad}", "--step=3"], ["--step goes with --workdir"]),
    (["--input={bad}", "--buckets=64,x"], ["--buckets", "comma-separated integers"]),
])
def test_cli_errors_are_one_line(hf_dir, tmp_path, flags, parts):
  bad = write_jsonl(tmp_path / "bad.jsonl", make_lines(2), raw=[(1, "nope")])
  flags = [f.format(bad=bad, tmp=tmp_path) for f in flags]
  proc = run_cli("spectrax.score", *flags, f"--output={tmp_path / 'out.jsonl'}",
                 f"--hf_checkpoint={hf_dir}")
  assert_one_error_line(proc, *parts)
  assert not os.path.exists(tmp_path / "out.jsonl")


def test_settings_from_a_training_config():
  assert score.config_settings("configs/gemma12b.py:gpu") == {
      "tensor": 1, "dtype": "bfloat16", "param_dtype": "bfloat16", "attention_backend": "cudnn"}
  assert score.config_settings("configs/llama8b.py")["attention_backend"] == "splash"
  with pytest.raises(ValueError, match="no file 'configs/nope.py'"):
    score.config_settings("configs/nope.py")


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink"])
def test_output_that_is_the_input_is_refused(hf_dir, tmp_path, spelling):
  requests = write_jsonl(tmp_path / "requests.jsonl", make_lines(3))
  before = open(requests, "rb").read()
  output = {"same": requests, "dotted": str(tmp_path / "." / "x" / ".." / "requests.jsonl"),
            "symlink": str(tmp_path / "link.jsonl")}[spelling]
  if spelling == "symlink":
    os.symlink(requests, output)
  proc = run_cli("spectrax.score", f"--input={requests}", f"--output={output}",
                 f"--hf_checkpoint={hf_dir}", f"--buckets={BUCKETS}", "--no_progress")
  assert_one_error_line(proc, f"--output={output} is the input file {requests}")
  assert open(requests, "rb").read() == before
  assert sorted(os.listdir(tmp_path)) == sorted(
      ["requests.jsonl"] + (["link.jsonl"] if spelling == "symlink" else []))


@pytest.fixture(scope="module")
def nan_hf_dir(hf_dir, tmp_path_factory):
  """`hf_dir` with one NaN in its output head, as a bad disk or export leaves it."""
  from safetensors.numpy import load_file, save_file  # pylint: disable=g-import-not-at-top
  path = str(tmp_path_factory.mktemp("nan_hf"))
  for name in os.listdir(hf_dir):
    with open(os.path.join(hf_dir, name), "rb") as src, open(os.path.join(path, name), "wb") as dst:
      dst.write(src.read())
  tensors = load_file(os.path.join(path, "model.safetensors"))
  tensors["lm_head.weight"][3, 0] = np.nan
  save_file(tensors, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
  return path


def test_a_non_finite_score_is_an_error_naming_request_and_checkpoint(nan_hf_dir, tmp_path):
  requests = write_jsonl(tmp_path / "requests.jsonl", make_lines(3))
  out = tmp_path / "scores.jsonl"
  proc = run_cli("spectrax.score", f"--input={requests}", f"--output={out}",
                 f"--hf_checkpoint={nan_hf_dir}", f"--buckets={BUCKETS}", "--no_progress")
  assert_one_error_line(proc, "request 'q0'", "logprobs=nan is not finite", nan_hf_dir)
  assert not out.exists() or "NaN" not in out.read_text()


def test_a_non_finite_metric_is_an_error_and_earlier_lines_are_kept(scorer, tmp_path):

  def inf_metrics(target, logprobs, ordinal=False):
    del target, logprobs, ordinal
    return {"js_divergence": float("inf")}

  lines = make_lines(2)
  lines[1]["target"] = [1.0] * len(lines[1]["options"])
  requests = write_jsonl(tmp_path / "requests.jsonl", lines)
  out = tmp_path / "out.jsonl"
  with pytest.raises(score.JobError, match="request 'q1': js_divergence=inf is not finite "
                                           "with ckpt-9"):
    score.score_file(requests, str(out), scorer, progress=False, target_metrics=inf_metrics,
                     checkpoint="ckpt-9")
  assert [o["id"] for o in read_jsonl(out)] == ["q0"]  # The good line before it is kept.


def test_a_corrupt_hf_config_is_one_error_line_naming_it(hf_dir, tmp_path):
  broken = tmp_path / "hf"
  broken.mkdir()
  for name in os.listdir(hf_dir):
    (broken / name).write_bytes(open(os.path.join(hf_dir, name), "rb").read())
  (broken / "config.json").write_bytes(b'{"model_type": "llama", "vocab_size": \xff}')
  requests = write_jsonl(tmp_path / "requests.jsonl", make_lines(2))
  proc = run_cli("spectrax.score", f"--input={requests}", f"--output={tmp_path / 'out.jsonl'}",
                 f"--hf_checkpoint={broken}", "--no_progress")
  assert_one_error_line(proc, f"{broken / 'config.json'}: not UTF-8 text")
  assert not (tmp_path / "out.jsonl").exists()
