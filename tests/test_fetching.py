"""data_pipelines.fetching against a local HTTP server and a fake Hub."""

import io
import os

import pytest

from data_pipelines import fetching
from data_pipelines.schema import Download, RawFile, TaskSpec
import download_fakes as fakes

CSV = b"question,options\n" + b"q,a\n" * 5000  # ~20 KB, several chunks.


@pytest.fixture
def server():
  s = fakes.FakeServer()
  yield s
  s.close()


def _spec(name, *raws):
  return TaskSpec(name=name, suite_split="test", kind="icl",
                  generate=lambda ctx: iter(()), raw_files=tuple(raws))


def _fetcher(tmp_path, server, **kw):
  return fetching.Fetcher(str(tmp_path / "raw"), hf_endpoint=server.url,
                          hf_cache_dir=str(tmp_path / "hf_cache"),
                          progress=False, out=io.StringIO(), **kw)


def _entry(raw_paths, download, tasks=("t",)):
  return fetching.Entry(download, list(tasks), list(raw_paths))


def test_collect_dedupes_equal_downloads_and_lists_their_tasks():
  d = Download(target="a/x.tar.gz", url="https://example.org/x.tar.gz",
               unpack="tar.gz", unpack_to="a/x")
  f1 = RawFile("a/x/1.csv", "somewhere", download=d)
  f2 = RawFile("a/x/2.csv", "somewhere", download=d)
  plain = RawFile("b.csv", "https://example.org/b (by hand)")
  entries = fetching.collect([_spec("one", f1, f2), _spec("two", f1, plain)])
  assert [e.target for e in entries] == ["a/x.tar.gz", "b.csv"]
  assert entries[0].tasks == ["one", "two"]
  assert entries[0].raw_files == ["a/x/1.csv", "a/x/2.csv"]
  # A file without a Download is a manual one, pointing where it is published.
  assert entries[1].download.manual == "Download it from https://example.org/b (by hand)."


def test_collect_refuses_two_ways_to_one_target():
  a = RawFile("f.csv", "p", download=Download(target="f.csv", url="https://a/f"))
  b = RawFile("f.csv", "p", download=Download(target="f.csv", url="https://b/f"))
  with pytest.raises(ValueError, match="in two different ways"):
    fetching.collect([_spec("one", a), _spec("two", b)])


def test_url_rewrites_parse_and_apply():
  rw = fetching.parse_url_rewrites(["https://x.org/=>http://127.0.0.1:1/x/", ""])
  assert fetching.rewrite_url("https://x.org/a/b.csv", rw) == "http://127.0.0.1:1/x/a/b.csv"
  assert fetching.rewrite_url("https://y.org/a", rw) == "https://y.org/a"
  with pytest.raises(ValueError, match="PREFIX=>NEWPREFIX"):
    fetching.parse_url_rewrites(["https://x.org/"])


def test_fresh_download_checks_size_and_sha(tmp_path, server):
  server.files["/data/f.csv"] = CSV
  d = Download(target="src/f.csv", url=server.url + "/data/f.csv",
               sha256=fakes.sha256(CSV), size=len(CSV))
  fetcher = _fetcher(tmp_path, server)
  entry = _entry(["src/f.csv"], d)
  assert fetcher.status(entry) == fetching.MISSING
  assert fetcher.ensure(entry) == "fetched"
  assert (tmp_path / "raw/src/f.csv").read_bytes() == CSV
  assert not (tmp_path / "raw/src/f.csv.part").exists()
  assert fetcher.status(entry) == fetching.PRESENT
  # Present and verified: nothing is requested again.
  n = len(server.seen)
  assert fetcher.ensure(entry) == fetching.PRESENT
  assert len(server.seen) == n


def test_url_rewrite_maps_a_public_address_onto_the_server(tmp_path, server):
  server.files["/mirror/habermas/x.parquet"] = b"parquet bytes"
  d = Download(target="x.parquet",
               url="https://storage.googleapis.com/habermas/x.parquet")
  fetcher = _fetcher(tmp_path, server, url_rewrites=[
      ("https://storage.googleapis.com/", server.url + "/mirror/")])
  fetcher.ensure(_entry(["x.parquet"], d))
  assert (tmp_path / "raw/x.parquet").read_bytes() == b"parquet bytes"


def test_resumes_a_partial_download_with_a_range_request(tmp_path, server):
  server.files["/f.csv"] = CSV
  d = Download(target="f.csv", url=server.url + "/f.csv",
               sha256=fakes.sha256(CSV))
  (tmp_path / "raw").mkdir()
  (tmp_path / "raw/f.csv.part").write_bytes(CSV[:7000])
  _fetcher(tmp_path, server).ensure(_entry(["f.csv"], d))
  assert server.ranges("/f.csv") == ["bytes=7000-"]
  assert (tmp_path / "raw/f.csv").read_bytes() == CSV


def test_a_server_ignoring_range_restarts_the_file(tmp_path, server):
  server.files["/f.csv"] = CSV
  server.ignore_range = True
  d = Download(target="f.csv", url=server.url + "/f.csv",
               sha256=fakes.sha256(CSV))
  (tmp_path / "raw").mkdir()
  (tmp_path / "raw/f.csv.part").write_bytes(CSV[:7000])
  _fetcher(tmp_path, server).ensure(_entry(["f.csv"], d))
  assert (tmp_path / "raw/f.csv").read_bytes() == CSV


def test_a_complete_part_file_is_finished_without_refetching(tmp_path, server):
  server.files["/f.csv"] = CSV
  d = Download(target="f.csv", url=server.url + "/f.csv", size=len(CSV))
  (tmp_path / "raw").mkdir()
  (tmp_path / "raw/f.csv.part").write_bytes(CSV)
  _fetcher(tmp_path, server).ensure(_entry(["f.csv"], d))  # Server says 416.
  assert (tmp_path / "raw/f.csv").read_bytes() == CSV


def test_checksum_mismatch_is_a_clear_error_and_the_file_is_removed(
    tmp_path, server):
  server.files["/f.csv"] = CSV
  d = Download(target="f.csv", url=server.url + "/f.csv", sha256="ab" * 32)
  with pytest.raises(fetching.DownloadError) as e:
    _fetcher(tmp_path, server).ensure(_entry(["f.csv"], d))
  assert f"its sha256 is {fakes.sha256(CSV)}, expected {'ab' * 32}" in str(e.value)
  assert "removed" in str(e.value)
  assert os.listdir(tmp_path / "raw") == []


def test_size_mismatch_is_an_error(tmp_path, server):
  server.files["/f.csv"] = CSV
  d = Download(target="f.csv", url=server.url + "/f.csv", size=len(CSV) - 1)
  with pytest.raises(fetching.DownloadError, match="size is"):
    _fetcher(tmp_path, server).ensure(_entry(["f.csv"], d))
  assert os.listdir(tmp_path / "raw") == []


def test_a_bad_present_file_is_downloaded_again(tmp_path, server):
  server.files["/f.csv"] = CSV
  d = Download(target="f.csv", url=server.url + "/f.csv",
               sha256=fakes.sha256(CSV))
  (tmp_path / "raw").mkdir()
  (tmp_path / "raw/f.csv").write_bytes(b"stale")
  assert _fetcher(tmp_path, server).ensure(_entry(["f.csv"], d)) == "fetched"
  assert (tmp_path / "raw/f.csv").read_bytes() == CSV


def test_http_errors_name_the_url(tmp_path, server):
  d = Download(target="f.csv", url=server.url + "/nope.csv")
  with pytest.raises(fetching.DownloadError, match="HTTP 404"):
    _fetcher(tmp_path, server).ensure(_entry(["f.csv"], d))


def test_zip_unpacks_and_the_archive_goes(tmp_path, server):
  server.files["/names.zip"] = fakes.zip_bytes(
      {"yob1880.txt": b"Mary,F,7065\n", "sub/": b"", "sub/NationalReadMe.pdf": b"%PDF"})
  d = Download(target="baby/names.zip", url=server.url + "/names.zip",
               unpack="zip", unpack_to="baby")
  entry = _entry(["baby/yob1880.txt", "baby/sub/NationalReadMe.pdf"], d)
  fetcher = _fetcher(tmp_path, server)
  assert fetcher.ensure(entry) == "fetched"
  assert (tmp_path / "raw/baby/yob1880.txt").read_bytes() == b"Mary,F,7065\n"
  assert (tmp_path / "raw/baby/sub/NationalReadMe.pdf").exists()
  assert not (tmp_path / "raw/baby/names.zip").exists()
  assert fetcher.status(entry) == fetching.PRESENT


def test_tar_gz_unpacks_with_or_without_a_top_folder_named_like_the_target(
    tmp_path, server):
  files = {"American_Trends_Panel_W26/info.csv": b"key\n"}
  server.files["/with.tgz"] = fakes.tar_gz_bytes(
      {"human_resp/" + k: v for k, v in files.items()})
  server.files["/without.tgz"] = fakes.tar_gz_bytes(
      {"./" + k: v for k, v in files.items()})
  for name in ("with", "without"):
    d = Download(target=f"{name}/human_resp.tar.gz",
                 url=f"{server.url}/{name}.tgz", unpack="tar.gz",
                 unpack_to=f"{name}/human_resp")
    raw = f"{name}/human_resp/American_Trends_Panel_W26/info.csv"
    _fetcher(tmp_path, server, keep_archives=True).ensure(_entry([raw], d))
    assert (tmp_path / "raw" / raw).read_bytes() == b"key\n"
    assert (tmp_path / "raw" / d.target).exists()  # keep_archives


@pytest.mark.parametrize("members,links", [
    ({"../evil.txt": b"x"}, None),
    ({"/abs/evil.txt": b"x"}, None),
    ({"ok/a.txt": b"x"}, {"ok/link": "/etc/passwd"}),
])
def test_tar_gz_refuses_members_that_escape(tmp_path, server, members, links):
  server.files["/bad.tgz"] = fakes.tar_gz_bytes(members, links)
  d = Download(target="bad.tgz", url=server.url + "/bad.tgz",
               unpack="tar.gz", unpack_to="bad")
  with pytest.raises(fetching.DownloadError, match="refusing"):
    _fetcher(tmp_path, server).ensure(_entry(["bad/a.txt"], d))
  assert not (tmp_path / "evil.txt").exists()
  assert not (tmp_path / "raw/bad").exists()  # Checked before writing any.


def test_zip_refuses_path_traversal(tmp_path, server):
  server.files["/bad.zip"] = fakes.zip_bytes({"a/../../evil.txt": b"x"})
  d = Download(target="bad.zip", url=server.url + "/bad.zip", unpack="zip",
               unpack_to="bad")
  with pytest.raises(fetching.DownloadError, match="outside"):
    _fetcher(tmp_path, server).ensure(_entry(["bad/a.txt"], d))
  assert not (tmp_path / "evil.txt").exists()


def test_bz2_streams_into_its_file(tmp_path, server):
  server.files["/threads.jsonl.bz2"] = fakes.bz2_bytes(CSV)
  d = Download(target="cmv/threads.jsonl.bz2",
               url=server.url + "/threads.jsonl.bz2", unpack="bz2",
               unpack_to="cmv/threads.jsonl")
  _fetcher(tmp_path, server).ensure(_entry(["cmv/threads.jsonl"], d))
  assert (tmp_path / "raw/cmv/threads.jsonl").read_bytes() == CSV
  assert not (tmp_path / "raw/cmv/threads.jsonl.bz2").exists()


def test_an_archive_without_the_expected_files_says_so(tmp_path, server):
  server.files["/x.zip"] = fakes.zip_bytes({"other.txt": b"x"})
  d = Download(target="x.zip", url=server.url + "/x.zip", unpack="zip",
               unpack_to="x")
  with pytest.raises(fetching.DownloadError, match="missing x/wanted.txt"):
    _fetcher(tmp_path, server).ensure(_entry(["x/wanted.txt"], d, ["task_a"]))


def test_hf_hub_file_is_copied_to_its_target(tmp_path, server):
  server.hf_files[("Anthropic/llm_global_opinions",
                   "data/global_opinions.csv")] = CSV
  d = Download(target="globaloqa/global_opinions.csv",
               hf_repo="Anthropic/llm_global_opinions",
               hf_filename="data/global_opinions.csv",
               sha256=fakes.sha256(CSV))
  _fetcher(tmp_path, server).ensure(_entry([d.target], d))
  assert (tmp_path / "raw" / d.target).read_bytes() == CSV
  heads = [s for s in server.seen if s.method == "HEAD"]
  assert heads[0].path == ("/datasets/Anthropic/llm_global_opinions/resolve/"
                           "main/data/global_opinions.csv")


def test_hf_revision_goes_into_the_url_and_a_missing_file_is_an_error(
    tmp_path, server):
  d = Download(target="m.parquet", hf_repo="cais/mmlu",
               hf_filename="all/test.parquet", revision="v1.0")
  with pytest.raises(fetching.DownloadError, match="cannot download"):
    _fetcher(tmp_path, server).ensure(_entry([d.target], d))
  assert any(s.path == "/datasets/cais/mmlu/resolve/v1.0/all/test.parquet"
             for s in server.seen)
  assert not (tmp_path / "raw/m.parquet").exists()


def test_manual_entry_says_what_to_do_and_where(tmp_path, server):
  d = Download(target="numbergame/numbergame_data.csv",
               manual="Accept the terms at https://dataverse.example/x.")
  fetcher = _fetcher(tmp_path, server)
  entry = _entry([d.target], d, ["numbergame_perc"])
  assert fetcher.status(entry) == fetching.MANUAL
  assert fetcher.ensure(entry) == fetching.MANUAL
  said = fetcher.out.getvalue()
  assert "Accept the terms at https://dataverse.example/x." in said
  assert str(tmp_path / "raw/numbergame/numbergame_data.csv") in said
  assert "numbergame_perc" in said
  assert server.seen == []


def test_manual_archive_is_unpacked_once_the_user_put_it_there(tmp_path, server):
  d = Download(target="wvs/wvs.zip", manual="Register and download it.",
               unpack="zip", unpack_to="wvs")
  (tmp_path / "raw/wvs").mkdir(parents=True)
  (tmp_path / "raw/wvs/wvs.zip").write_bytes(fakes.zip_bytes({"w7.sav": b"s"}))
  assert _fetcher(tmp_path, server).ensure(_entry(["wvs/w7.sav"], d)) == "fetched"
  assert (tmp_path / "raw/wvs/w7.sav").read_bytes() == b"s"


def test_a_password_zip_unpacks_with_its_password_only(tmp_path, server):
  """GPQA's dataset.zip: legacy ZipCrypto with the authors' password
  (tests/fixtures/gpqa_dataset_encrypted.zip: the GPQA fixture CSV zipped
  with `zip -P`)."""
  here = os.path.dirname(os.path.abspath(__file__))
  with open(os.path.join(here, "fixtures", "gpqa_dataset_encrypted.zip"), "rb") as f:
    server.files["/dataset.zip"] = f.read()
  with open(os.path.join(here, "fixtures", "raw", "gpqa", "dataset",
                         "gpqa_main.csv"), "rb") as f:
    expected = f.read()
  for password, ok in (("wrong", False), ("deserted-untie-orchid", True)):
    raw = tmp_path / password
    d = Download(target="gpqa/dataset.zip", url=server.url + "/dataset.zip",
                 unpack="zip", unpack_to="gpqa", password=password)
    entry = _entry(["gpqa/dataset/gpqa_main.csv"], d)
    fetcher = _fetcher(raw, server)
    if ok:
      assert fetcher.ensure(entry) == "fetched"
      assert (raw / "raw/gpqa/dataset/gpqa_main.csv").read_bytes() == expected
    else:
      with pytest.raises(fetching.DownloadError, match="cannot unpack it as zip"):
        fetcher.ensure(entry)
      assert not (raw / "raw/gpqa/dataset/gpqa_main.csv").exists()
