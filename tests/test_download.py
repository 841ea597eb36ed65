"""`python -m data_pipelines.download` end to end, against a local server.

The real sources' own Download entries are fetched, with their public
addresses mapped onto a server on 127.0.0.1 (--url_rewrite, the env var, and
--hf_endpoint for a fake Hub); nothing touches the internet.
"""

import io
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import download_fakes as fakes
from data_pipelines.sources import opinionqa

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODALAB_BLOB = ("/codalab/rest/bundles/0x050b7e72abb04d1f9b493c1743e580cf/"
                "contents/blob/")
FAKE_REGISTRY = """
import download_fakes
from data_pipelines import registry
registry.all_tasks = download_fakes.fake_tasks
from absl import app
from data_pipelines import download
app.run(download.main)
"""


@pytest.fixture
def server():
  s = fakes.FakeServer()
  yield s
  s.close()


def _parquet(columns: dict) -> bytes:
  buf = io.BytesIO()
  pq.write_table(pa.table(columns), buf)
  return buf.getvalue()


def _publish_real_sources(server):
  """Bytes for the Download entries of globaloqa, habermas, opinionqa and
  mmlu, at the paths their public addresses map to."""
  gcs = "/gcs/habermas_machine/datasets/"
  server.files[gcs + "hm_all_position_statement_ratings.parquet"] = _parquet(
      {"worker_id": ["w1"]})
  server.files[gcs + "hm_all_round_survey_responses.parquet"] = _parquet(
      {"worker_id": ["w1"]})
  # The CodaLab bundle: human_resp/ with a folder per wave.
  members = {}
  for w in opinionqa.WAVES:
    members[f"human_resp/American_Trends_Panel_W{w}/info.csv"] = b"key\n"
    members[f"human_resp/American_Trends_Panel_W{w}/responses.csv"] = b"k\n"
  server.files[CODALAB_BLOB] = fakes.tar_gz_bytes(members)
  server.hf_files[("Anthropic/llm_global_opinions",
                   "data/global_opinions.csv")] = b"question\n"
  server.hf_files[("cais/mmlu", "all/test-00000-of-00001.parquet")] = _parquet(
      {"question": ["q"]})


def _run(tmp_path, server, *args, fake_registry=False, env=None):
  environ = dict(os.environ)
  environ.update({
      "PYTHONPATH": os.pathsep.join([REPO, os.path.join(REPO, "tests")]),
      "HF_HUB_CACHE": str(tmp_path / "hf_cache"), "HF_HUB_OFFLINE": "0",
      "HF_HUB_DISABLE_TELEMETRY": "1", "FAKE_SERVER_URL": server.url})
  environ.pop("HF_ENDPOINT", None)
  environ.pop("SPECTRAX_DOWNLOAD_URL_REWRITE", None)
  environ.update(env or {})
  cmd = ([sys.executable, "-c", FAKE_REGISTRY] if fake_registry else
         [sys.executable, "-m", "data_pipelines.download"])
  return subprocess.run(
      cmd + [f"--raw_dir={tmp_path / 'raw'}", "--noprogress", *args],
      cwd=REPO, env=environ, capture_output=True, text=True, timeout=120)


REAL = ("globaloqa,habermas_question,habermas_distributional,"
        "opinionqa_questions,opinionqa_individual,mmlu")


def _real_flags(server):
  return [f"--tasks={REAL}", f"--hf_endpoint={server.url}",
          f"--url_rewrite=https://storage.googleapis.com/=>{server.url}/gcs/"]


def _codalab_env(server):
  return {"SPECTRAX_DOWNLOAD_URL_REWRITE":
          f"https://worksheets.codalab.org/=>{server.url}/codalab/"}


def test_real_sources_download_then_are_skipped(tmp_path, server):
  _publish_real_sources(server)
  env = _codalab_env(server)
  listed = _run(tmp_path, server, "--list", *_real_flags(server), env=env)
  assert listed.returncode == 0, listed.stderr
  lines = listed.stdout.splitlines()
  assert lines[-1].startswith("5 download(s): 0 present, 5 missing, 0 manual")
  assert any(l.startswith("missing  opinionqa/human_resp.tar.gz -> "
                          "opinionqa/human_resp") and
             "[opinionqa_questions, opinionqa_individual]" in l for l in lines)

  done = _run(tmp_path, server, *_real_flags(server), env=env)
  assert done.returncode == 0, done.stderr
  raw = tmp_path / "raw"
  assert (raw / "globaloqa/global_opinions.csv").read_bytes() == b"question\n"
  assert (raw / "mmlu/all/test-00000-of-00001.parquet").exists()
  assert (raw / "habermas_data/hm_all_round_survey_responses.parquet").exists()
  # The tarball's human_resp/ lands where opinionqa.py reads, not one deeper.
  for f in opinionqa.INFO_FILES + opinionqa.RESPONSE_FILES:
    assert (raw / f.path).is_file(), f.path
  assert not (raw / "opinionqa/human_resp/human_resp").exists()
  assert not (raw / "opinionqa/human_resp.tar.gz").exists()
  assert "all 6 selected task(s) have their raw files" in done.stdout

  n = len([s for s in server.seen if s.method == "GET"])
  again = _run(tmp_path, server, *_real_flags(server), env=env)
  assert again.returncode == 0, again.stderr
  assert again.stdout.count(": present") == 5
  assert len([s for s in server.seen if s.method == "GET"]) == n
  listed = _run(tmp_path, server, "--list", *_real_flags(server), env=env)
  assert listed.stdout.splitlines()[-1].startswith(
      "5 download(s): 5 present, 0 missing, 0 manual")


def test_manual_source_prints_what_to_do_and_exits_1_until_present(
    tmp_path, server):
  result = _run(tmp_path, server, "--tasks=numbergame_perc,numbergame_individual")
  assert result.returncode == 1, result.stderr
  target = tmp_path / "raw/numbergame/numbergame_data.csv"
  assert "manual: numbergame/numbergame_data.csv" in result.stdout
  assert "doi:10.7910/DVN/A8ZWLF" in result.stdout
  assert f"Put the file at: {target}" in result.stdout
  assert "2 task(s) still lack raw files" in result.stderr
  assert "numbergame_perc: numbergame/numbergame_data.csv" in result.stderr
  assert "Traceback" not in result.stderr
  listed = _run(tmp_path, server, "--tasks=numbergame_perc", "--list")
  assert listed.stdout.startswith("manual   numbergame/numbergame_data.csv")

  target.parent.mkdir(parents=True)
  target.write_text("id,set,target,rating\n")
  result = _run(tmp_path, server, "--tasks=numbergame_perc")
  assert result.returncode == 0, result.stderr
  assert "numbergame/numbergame_data.csv: present" in result.stdout


def test_checksum_mismatch_exits_2_with_one_error_line(tmp_path, server):
  server.files["/good.csv"] = b"tampered bytes\n"
  result = _run(tmp_path, server, fake_registry=True)
  assert result.returncode == 2
  errors = [l for l in result.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1
  assert "checked/good.csv" in errors[0] and "sha256" in errors[0]
  assert "removed" in errors[0]
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "raw/checked/good.csv").exists()
  assert not (tmp_path / "raw/checked/good.csv.part").exists()
  # The server corrected: the same command now succeeds.
  server.files["/good.csv"] = fakes.GOOD
  assert _run(tmp_path, server, fake_registry=True).returncode == 0


def test_a_partial_download_resumes_from_the_cli(tmp_path, server):
  server.files["/good.csv"] = fakes.GOOD
  part = tmp_path / "raw/checked/good.csv.part"
  part.parent.mkdir(parents=True)
  part.write_bytes(fakes.GOOD[:5])
  result = _run(tmp_path, server, fake_registry=True)
  assert result.returncode == 0, result.stderr
  assert server.ranges("/good.csv") == ["bytes=5-"]
  assert (tmp_path / "raw/checked/good.csv").read_bytes() == fakes.GOOD


@pytest.mark.parametrize("args,message", [
    (["--tasks=no_such_task"], "unknown task(s) ['no_such_task']"),
    (["--tasks=mmlu", "--url_rewrite=https://x.org/"], "PREFIX=>NEWPREFIX"),
])
def test_expected_errors_are_one_line_and_exit_2(tmp_path, server, args,
                                                 message):
  result = _run(tmp_path, server, *args)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      l for l in result.stderr.strip().splitlines() if l.startswith("error:")]
  assert message in result.stderr
  assert "Traceback" not in result.stderr


def test_unreachable_server_is_an_error_naming_the_file(tmp_path, server):
  url = server.url
  server.close()
  result = _run(tmp_path, server, "--tasks=habermas_distributional",
                f"--url_rewrite=https://storage.googleapis.com/=>{url}/")
  assert result.returncode == 2
  assert "error: habermas_data/hm_all_position_statement_ratings.parquet: " \
         "cannot reach" in result.stderr
  assert "habermas_distributional" in result.stderr
  assert "Traceback" not in result.stderr


def _build_list(*args):
  return subprocess.run(
      [sys.executable, "-m", "data_pipelines.build", "--list", *args],
      cwd=REPO, capture_output=True, text=True, timeout=120)


def test_build_list_says_which_raw_files_are_present(tmp_path):
  raw = tmp_path / "raw"
  (raw / "globaloqa").mkdir(parents=True)
  (raw / "globaloqa/global_opinions.csv").write_text("question\n")
  (raw / "habermas_data").mkdir()
  (raw / "habermas_data/hm_all_position_statement_ratings.parquet").write_text("")
  result = _build_list(f"--raw_dir={raw}")
  assert result.returncode == 0, result.stderr
  lines = {l.split()[0]: l.split() for l in result.stdout.splitlines()[:-1]}
  assert lines["globaloqa"] == ["globaloqa", "test", "icl",
                                "globaloqa/global_opinions.csv", "ok"]
  assert lines["coinflip"] == ["coinflip", "train", "icl", "synthetic"]
  assert lines["mmlu"][3:] == ["mmlu/all/test-00000-of-00001.parquet",
                               "missing"]
  assert lines["habermas_distributional"][3:] == [
      "habermas_data/hm_all_position_statement_ratings.parquet", "ok"]
  assert lines["habermas_question"][3:] == [
      "habermas_data/hm_all_position_statement_ratings.parquet", "ok,",
      "habermas_data/hm_all_round_survey_responses.parquet", "missing"]
  assert lines["opinionqa_questions"][3:] == [
      "opinionqa/human_resp/", "(15", "files)", "missing"]
  summary = result.stdout.splitlines()[-1]
  assert "with every raw file present" in summary
  assert "python -m data_pipelines.download" in summary


def test_build_list_works_without_raw_dir_or_out():
  result = _build_list()
  assert result.returncode == 0, result.stderr
  assert "no --raw_dir given" in result.stdout.splitlines()[-1]
  assert any(l.split()[-1] == "missing" and l.startswith("mmlu ")
             for l in result.stdout.splitlines())
