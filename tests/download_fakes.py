"""A local HTTP server for the download tests: plain files with Range support
and a fake Hugging Face Hub (`/datasets/{repo}/resolve/{revision}/{path}`).

Nothing here touches the internet: the server listens on 127.0.0.1 on a free
port, in a thread, and records every request it sees.
"""

from __future__ import annotations

import bz2
import dataclasses
import hashlib
import http.server
import io
import re
import tarfile
import threading
import zipfile

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclasses.dataclass
class Seen:
  method: str
  path: str
  range: str | None


class FakeServer:
  """Serves `files` (URL path -> bytes) and `hf_files` ((repo, filename) ->
  bytes) until `close()`; `seen` lists the requests."""

  def __init__(self):
    self.files: dict[str, bytes] = {}
    self.hf_files: dict[tuple[str, str], bytes] = {}
    self.seen: list[Seen] = []
    self.ignore_range = False
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):
      protocol_version = "HTTP/1.1"

      def log_message(self, *args):  # Quiet.
        del args

      def do_HEAD(self):  # pylint: disable=invalid-name
        self._serve(body=False)

      def do_GET(self):  # pylint: disable=invalid-name
        self._serve(body=True)

      def _serve(self, body):
        path = self.path.split("?")[0]
        server.seen.append(Seen(self.command, path, self.headers.get("Range")))
        hf = re.fullmatch(r"/datasets/(.+?/.+?)/resolve/([^/]+)/(.+)", path)
        extra = {}
        if hf:
          data = server.hf_files.get((hf.group(1), hf.group(3)))
          # What huggingface_hub reads from the Hub: the commit, an ETag.
          extra = {"X-Repo-Commit": COMMIT,
                   "ETag": '"' + hashlib.sha256(data or b"").hexdigest() + '"'}
        else:
          data = server.files.get(path)
        if data is None:
          self.send_response(404)
          self.send_header("Content-Length", "0")
          for k, v in extra.items():
            self.send_header(k, v)
          self.end_headers()
          return
        start = 0
        status = 200
        rng = self.headers.get("Range")
        if rng and not server.ignore_range:
          m = re.fullmatch(r"bytes=(\d+)-", rng)
          start = int(m.group(1))
          if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
          status = 206
        chunk = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
          self.send_header("Content-Range",
                           f"bytes {start}-{len(data) - 1}/{len(data)}")
        for k, v in extra.items():
          self.send_header(k, v)
        self.end_headers()
        if body:
          self.wfile.write(chunk)

    self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self._httpd.daemon_threads = True
    self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
    self._thread = threading.Thread(target=self._httpd.serve_forever,
                                    daemon=True)
    self._thread.start()

  def ranges(self, path: str) -> list[str | None]:
    return [s.range for s in self.seen if s.path == path and s.method == "GET"]

  def close(self):
    self._httpd.shutdown()
    self._httpd.server_close()


def sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def zip_bytes(members: dict[str, bytes]) -> bytes:
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as z:
    for name, data in members.items():
      z.writestr(name, data)
  return buf.getvalue()


def tar_gz_bytes(members: dict[str, bytes], links: dict[str, str] | None = None
                 ) -> bytes:
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode="w:gz") as tar:
    for name, data in members.items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
    for name, target in (links or {}).items():
      info = tarfile.TarInfo(name)
      info.type = tarfile.SYMTYPE
      info.linkname = target
      tar.addfile(info)
  return buf.getvalue()


def bz2_bytes(data: bytes) -> bytes:
  return bz2.compress(data)


GOOD = b"the right bytes\n"


def fake_tasks():
  """A registry for CLI tests (`registry.all_tasks` replaced in a child
  process): `checked` downloads $FAKE_SERVER_URL/good.csv with a sha256 that
  the server's bytes do not have."""
  import os  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=g-import-not-at-top
  from data_pipelines.schema import Download, RawFile, TaskSpec
  url = os.environ["FAKE_SERVER_URL"]
  raw = RawFile("checked/good.csv", url + "/good.csv", download=Download(
      target="checked/good.csv", url=url + "/good.csv", sha256=sha256(GOOD)))
  return {"checked": TaskSpec(name="checked", suite_split="test", kind="icl",
                              generate=lambda ctx: iter(()), raw_files=(raw,))}
