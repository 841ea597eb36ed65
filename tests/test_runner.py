"""`python -m spectrax.evaluate` end to end on a trained tiny workdir.

The distributional numbers it reports are checked against an independent
computation: full-sequence logits of `prompt + option` for each option, one
forward per pair, float32.
"""

import json
import os
import re

import numpy as np
import pytest

from cli_runs import assert_one_error_line, foreign_info_lines, run_cli
from data_pipelines import build
from data_pipelines.schema import Instance, Row, TaskSpec
from data_pipelines.synthetic import diversity as diversity_data
from data_pipelines.synthetic import urn
from spectrax.data import templates
from spectrax.data.episodes import format_episode
from spectrax.evaluation import metrics, runner, suites
from spectrax.checkpoints.loading import load_model
from spectrax.data.suite_reader import Suite

DIVERSITY_TASK = "us_states_full_names"


def _coins(ctx):
  rng = np.random.default_rng(ctx.seed)
  for i in range(4):
    yield Instance(id=f"c{i}", descriptions=["A biased coin."],
                   rows=[Row("Heads" if rng.random() < 0.8 else "Tails") for _ in range(12)])


@pytest.fixture(scope="module")
def eval_suite(tmp_path_factory):
  specs = [TaskSpec(name="coins_test", suite_split="test", kind="icl", generate=_coins,
                    mean_k=6, test_fraction=1.0),
           urn.SPEC, diversity_data.SPEC]
  out = str(tmp_path_factory.mktemp("eval_suite"))
  assert build.build(out, specs, seed=0, raw_dir=None) == []
  return out


@pytest.fixture(scope="module")
def report_dir(tiny_run, eval_suite, tmp_path_factory):
  workdir, _ = tiny_run
  out = str(tmp_path_factory.mktemp("report"))
  proc = run_cli("spectrax.evaluate", "--suite=all", f"--suite_dir={eval_suite}",
                 f"--out={out}", f"--model=early=workdir:{workdir}@4",
                 f"--model=final=workdir:{workdir}", f"--tasks=coins_test,urn,{DIVERSITY_TASK}",
                 "--num_episodes=3", "--num_questions=3", "--num_samples=4",
                 "--sample_batch_size=8", "--max_tokens=64")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f"report: {os.path.join(out, 'report.html')}" in proc.stdout
  # Only spectrax's own lines and progress bars: no orbax / jax INFO.
  assert not foreign_info_lines(proc.stderr), foreign_info_lines(proc.stderr)[:5]
  return out


def test_models_named_wrongly_fail_before_loading(eval_suite, tmp_path):
  for model, part in [("base=hf:/x@3", "@STEP applies to workdir models only"),
                      ("base=workdir:/x#nope", "unknown template 'nope'")]:
    proc = run_cli("spectrax.evaluate", f"--suite_dir={eval_suite}", f"--out={tmp_path}",
                   f"--model={model}")
    assert_one_error_line(proc, f"--model='{model}'", part)
  with pytest.raises(runner.EvalError, match=r"repeated: \['a'\]"):
    runner.evaluate(["a=hf:/x", "a=hf:/y"], suite_dir=eval_suite, out=str(tmp_path))
  with pytest.raises(runner.EvalError, match="--suite='nope'"):
    runner.evaluate(["a=hf:/x"], suite_dir=eval_suite, out=str(tmp_path),
                    settings=runner.EvalSettings(suite="nope"))


@pytest.mark.slow
def test_report_has_every_suite_and_model(report_dir):
  with open(os.path.join(report_dir, "metrics.json")) as f:
    results = json.load(f)
  assert sorted(results) == ["early", "final"]
  for name, res in results.items():
    assert res["_model"]["template"] == "gemma", name
    assert res["_model"]["loaded"].endswith("@4" if name == "early" else "@8")
    steer = res["steerability"]["tasks"]["coins_test"]
    assert steer["episodes"] + steer["dropped"] == 3 and 0 <= steer["all_acc"] <= 1
    dist = res["distributional"]["tasks"]["urn"]
    assert dist["num_questions"] == 3 and 0 <= dist["metrics"]["js_divergence"] <= np.log(2)
    div = res["diversity"]["tasks"][DIVERSITY_TASK]
    assert set(div) == {"description", "examples", "both"}
    assert all(0 <= v["percent_valid"] <= 1 for v in div.values())
    assert "capabilities" not in res  # --tasks names no capability set: skipped.
  # Different checkpoints really differ.
  assert (results["early"]["distributional"]["tasks"]["urn"]["metrics"]["js_divergence"]
          != results["final"]["distributional"]["tasks"]["urn"]["metrics"]["js_divergence"])
  with open(os.path.join(report_dir, "report.html"), encoding="utf-8") as f:
    page = f.read()
  images = re.findall(r'src="([^"]+\.png)"', page)
  assert images and all(os.path.getsize(os.path.join(report_dir, p)) > 1000 for p in images)
  for section in ("steerability", "Distributional alignment", "Valid output coverage"):
    assert section in page, section


@pytest.mark.slow
def test_distributional_scores_match_one_forward_per_option(report_dir, tiny_run, eval_suite):
  with open(os.path.join(report_dir, "metrics.json")) as f:
    examples = json.load(f)["final"]["distributional"]["tasks"]["urn"]["examples"]
  assert len(examples) == 3
  loaded = load_model(workdir=tiny_run[0])
  tok, template = loaded.tokenizer, templates.get_template("gemma")
  logits_fn = loaded.model.logits
  source = Suite(eval_suite).source("urn", "test")
  records = {r.id: r for r in suites.task_records(source)}
  for ex in examples:
    record = records[ex["id"]]
    messages = [{"role": "description", "content": record.descriptions[0]}]
    if record.question:
      messages.append({"role": "input", "content": record.question})
    prompt = "".join(t for t, _ in format_episode(messages, "gemma", add_generation_prompt=True))
    prompt_ids = [tok.bos_id] + tok.encode(prompt)
    logps = []
    for option in ex["options"]:
      ids = [tok.bos_id] + tok.encode(prompt + template.content_prefix + option)
      assert ids[:len(prompt_ids)] == prompt_ids
      logits = np.asarray(logits_fn(np.asarray([ids], np.int32)), np.float64)[0]
      logp = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
      logps.append(sum(logp[i - 1, ids[i]] for i in range(len(prompt_ids), len(ids))))
    probs = np.exp(np.asarray(logps) - np.logaddexp.reduce(logps))
    np.testing.assert_allclose(ex["model"], probs, atol=2e-5)
    assert ex["js_divergence"] == pytest.approx(
        metrics.js_divergence(ex["target"], probs), abs=2e-5)


@pytest.fixture(scope="module")
def train_only_suite(tmp_path_factory):
  """A suite whose one task is a train task without held-out instances."""
  specs = [TaskSpec(name="coins_train", suite_split="train", kind="icl", generate=_coins,
                    mean_k=6, test_fraction=0.0)]
  out = str(tmp_path_factory.mktemp("train_only_suite"))
  assert build.build(out, specs, seed=0, raw_dir=None) == []
  return out


@pytest.mark.parametrize("suite, flags, parts", [
    ("train_only", ["--suite=all"], ["nothing to evaluate", "--suite=all",
                                     "python -m data_pipelines.build --out="]),
    ("eval", ["--suite=capabilities"], ["nothing to evaluate", "--suite=capabilities"]),
    ("eval", ["--suite=all", "--tasks=nope,urn"],
     ["--tasks names ['nope']", "python -m data_pipelines.build --out=", "--tasks=nope"]),
    ("eval", ["--suite=distributional", "--tasks=coins_test"],
     ["--tasks names ['coins_test']", "distributional"]),
])
def test_an_evaluation_of_nothing_is_an_error(train_only_suite, eval_suite, tmp_path, suite,
                                              flags, parts):
  suite_dir = train_only_suite if suite == "train_only" else eval_suite
  out = tmp_path / "eval"
  # The model is never loaded: the check comes first.
  proc = run_cli("spectrax.evaluate", f"--suite_dir={suite_dir}", f"--out={out}",
                 f"--model=m=workdir:{tmp_path / 'no_run'}", *flags)
  assert_one_error_line(proc, *parts, suite_dir)
  assert not out.exists()


def test_a_non_finite_headline_is_an_error_naming_the_model():
  with pytest.raises(runner.EvalError, match=r"model 'm': the distributional headline "
                                             r"js_divergence=nan is not finite"):
    runner._check_finite_summary("m", "distributional",  # pylint: disable=protected-access
                                 {"summary": {"js_divergence": float("nan"), "kl": None}})
  runner._check_finite_summary("m", "steerability",  # pylint: disable=protected-access
                               {"summary": {"loss": 1.5, "calibration": [[0.1, 0.2]]}})


@pytest.fixture(scope="module")
def nan_hf_dir(tmp_path_factory):
  """A tiny HF Llama checkpoint with a word tokenizer and one NaN in its output
  head, as a bad disk or a broken export leaves it."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from tokenizers import Tokenizer, models, pre_tokenizers  # pylint: disable=g-import-not-at-top
  cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                 num_attention_heads=4, num_key_value_heads=2,
                                 num_hidden_layers=1, max_position_embeddings=256,
                                 tie_word_embeddings=False)
  torch.manual_seed(0)
  model = transformers.AutoModelForCausalLM.from_config(cfg).eval()
  with torch.no_grad():
    model.lm_head.weight[3, 0] = float("nan")
  path = str(tmp_path_factory.mktemp("nan_hf"))
  model.save_pretrained(path)
  vocab = {"<unk>": 0, **{w: i + 1 for i, w in enumerate("red blue green Output: Input:".split())}}
  tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
  tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>",
                                       eos_token="<unk>").save_pretrained(path)
  return path


def test_a_non_finite_headline_stops_the_evaluation_naming_the_model(nan_hf_dir, eval_suite,
                                                                     tmp_path):
  out = tmp_path / "eval"
  proc = run_cli("spectrax.evaluate", "--suite=distributional", f"--suite_dir={eval_suite}",
                 f"--out={out}", f"--model=broken=hf:{nan_hf_dir}", "--num_questions=2")
  assert_one_error_line(proc, "model 'broken': the log-probability of request",
                        "[nan, nan", "is not finite; its checkpoint is probably corrupt")
  assert not (out / "metrics.json").exists()  # No NaN written as a result.
