"""The engine of `python -m data_pipelines.download`: fetch, check, unpack.

Every real source's `RawFile`s say how to get them (`schema.Download`): a
direct URL, a file of a Hugging Face dataset repository, or manual steps.
`collect` gathers the downloads of the selected tasks (one per distinct
`Download`, however many files and tasks share it); `Fetcher` brings one
into `raw_dir`:

  * URLs stream into `TARGET.part` and resume from it with an HTTP Range
    request, so an interrupted download goes on where it stopped;
  * Hub files come through `huggingface_hub.hf_hub_download` (its cache and
    resume) and are copied to the target;
  * `size` / `sha256`, when known, are checked; a file that fails is removed
    and the error names both values;
  * zip and tar.gz archives unpack member by member, refusing absolute paths,
    `..` and links, so nothing lands outside `unpack_to`; bz2 streams.

The standard library does the HTTP; huggingface_hub and tqdm are imported
when used. Nothing here imports spectrax.
"""

from __future__ import annotations

import bz2
import dataclasses
import hashlib
import os
import shutil
import stat
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Sequence
from typing import TextIO

from data_pipelines.schema import Download, RawFile, TaskSpec

DEFAULT_HF_ENDPOINT = "https://huggingface.co"
URL_REWRITE_ENV = "SPECTRAX_DOWNLOAD_URL_REWRITE"
_CHUNK = 1 << 20
_TIMEOUT_S = 60
_USER_AGENT = "spectrax-data-download/1"

PRESENT, MISSING, MANUAL = "present", "missing", "manual"


class DownloadError(ValueError):
  """A download that failed or did not check out; the message says which file
  and what to do."""


@dataclasses.dataclass
class Entry:
  """One distinct download and who needs it."""

  download: Download
  tasks: list[str] = dataclasses.field(default_factory=list)
  raw_files: list[str] = dataclasses.field(default_factory=list)

  @property
  def target(self) -> str:
    return self.download.target


def download_of(raw: RawFile) -> Download:
  """The file's `Download`; a file without one is a manual download whose
  instructions are its `published_at`."""
  if raw.download is not None:
    return raw.download
  return Download(target=raw.path,
                  manual=f"Download it from {raw.published_at}.")


def collect(specs: Iterable[TaskSpec]) -> list[Entry]:
  """The downloads the tasks' raw files need, one per distinct `Download`, in
  order of first use.

  Raises:
    ValueError: two different downloads write the same target.
  """
  entries: dict[Download, Entry] = {}
  by_target: dict[str, tuple[Download, str]] = {}
  for spec in specs:
    for raw in spec.raw_files:
      d = download_of(raw)
      seen = by_target.get(d.target)
      if seen is not None and seen[0] != d:
        raise ValueError(
            f"tasks {seen[1]!r} and {spec.name!r} download {d.target!r} in two "
            f"different ways ({seen[0]} vs {d}); give them one Download.")
      by_target.setdefault(d.target, (d, spec.name))
      entry = entries.setdefault(d, Entry(d))
      if spec.name not in entry.tasks:
        entry.tasks.append(spec.name)
      if raw.path not in entry.raw_files:
        entry.raw_files.append(raw.path)
  return list(entries.values())


def parse_url_rewrites(specs: Iterable[str]) -> list[tuple[str, str]]:
  """`PREFIX=>NEWPREFIX` strings as pairs (empty strings are skipped).

  Raises:
    ValueError: an entry without `=>` or with an empty prefix.
  """
  out = []
  for s in specs:
    s = s.strip()
    if not s:
      continue
    old, sep, new = s.partition("=>")
    if not sep or not old:
      raise ValueError(f"url rewrite {s!r} is not PREFIX=>NEWPREFIX (e.g. "
                       "https://storage.googleapis.com/=>http://127.0.0.1:8000/).")
    out.append((old, new))
  return out


def env_url_rewrites() -> list[str]:
  """The rewrites in $SPECTRAX_DOWNLOAD_URL_REWRITE, whitespace-separated."""
  return os.environ.get(URL_REWRITE_ENV, "").split()


def rewrite_url(url: str, rewrites: Sequence[tuple[str, str]]) -> str:
  """`url` with the first matching prefix replaced."""
  for old, new in rewrites:
    if url.startswith(old):
      return new + url[len(old):]
  return url


def human_size(n: int | None) -> str:
  if n is None:
    return "?"
  size = float(n)
  for unit in ("B", "KB", "MB", "GB"):
    if size < 1000 or unit == "GB":
      return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
    size /= 1000
  return f"{n} B"


def source_of(d: Download) -> str:
  """Where a download comes from, in one short string."""
  if d.url is not None:
    return d.url
  if d.hf_repo is not None:
    rev = f"@{d.revision}" if d.revision else ""
    return f"hf://datasets/{d.hf_repo}/{d.hf_filename}{rev}"
  return "manual"


def sha256_of(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    while chunk := f.read(_CHUNK):
      h.update(chunk)
  return h.hexdigest()


def check_file(path: str, d: Download) -> str | None:
  """Why the file at `path` is not `d`'s file (size or sha256), or None."""
  if d.size is not None:
    size = os.path.getsize(path)
    if size != d.size:
      return f"its size is {size} bytes, expected {d.size}"
  if d.sha256 is not None:
    digest = sha256_of(path)
    if digest != d.sha256.lower():
      return f"its sha256 is {digest}, expected {d.sha256.lower()}"
  return None


class Fetcher:
  """Brings downloads into `raw_dir`.

  Args:
    raw_dir: the directory `--raw_dir` names (created when missing).
    hf_endpoint: the Hub's base URL (tests: a local fake).
    url_rewrites: (prefix, new prefix) pairs applied to every URL.
    hf_cache_dir: huggingface_hub's cache (None: its default).
    keep_archives: keep zip/tar.gz/bz2 files after unpacking them.
    progress: show a tqdm bar per file.
    out: where progress lines go.
  """

  def __init__(self, raw_dir: str, *, hf_endpoint: str = DEFAULT_HF_ENDPOINT,
               url_rewrites: Sequence[tuple[str, str]] = (),
               hf_cache_dir: str | None = None, keep_archives: bool = False,
               progress: bool = True, out: TextIO | None = None):
    self.raw_dir = raw_dir
    self.hf_endpoint = hf_endpoint.rstrip("/")
    self.url_rewrites = list(url_rewrites)
    self.hf_cache_dir = hf_cache_dir
    self.keep_archives = keep_archives
    self.progress = progress
    self.out = out or sys.stdout

  def path(self, rel: str) -> str:
    return os.path.join(self.raw_dir, rel)

  def _say(self, line: str) -> None:
    print(line, file=self.out, flush=True)

  # -- status -----------------------------------------------------------------

  def status(self, entry: Entry) -> str:
    """PRESENT when every raw file the entry provides exists (and, for a file
    that is the download itself, its size matches); else MANUAL or MISSING.
    The sha256 is checked by `ensure`, not here."""
    d = entry.download
    files_there = all(os.path.isfile(self.path(p)) for p in entry.raw_files)
    if files_there and d.unpack is None and d.size is not None:
      target = self.path(d.target)
      files_there = (os.path.isfile(target)
                     and os.path.getsize(target) == d.size)
    if files_there:
      return PRESENT
    return MANUAL if d.manual is not None else MISSING

  def manual_message(self, entry: Entry) -> str:
    d = entry.download
    where = os.path.abspath(self.path(d.target))
    lines = [f"manual: {d.target} (needed by {', '.join(entry.tasks)}) "
             "cannot be downloaded automatically.",
             f"  {d.manual}",
             f"  Put the file at: {where}"]
    if d.unpack is not None:
      lines.append(f"  Then run this command again: it unpacks it ({d.unpack}) "
                   f"into {os.path.abspath(self.path(d.unpack_to))}.")
    return "\n".join(lines)

  # -- fetching ---------------------------------------------------------------

  def ensure(self, entry: Entry) -> str:
    """Makes the entry's files present; returns PRESENT (they were already),
    "fetched", or MANUAL (the user must act; the message is printed).

    Raises:
      DownloadError: the download failed, did not match its size/sha256 (the
        file is removed), or its archive did not hold the expected files.
    """
    d = entry.download
    target = self.path(d.target)
    if self.status(entry) == PRESENT:
      if d.unpack is not None or not os.path.isfile(target):
        return PRESENT
      why = check_file(target, d)
      if why is None:
        return PRESENT
      if d.manual is not None:
        raise DownloadError(f"{target} is there but {why}: replace it with the "
                            f"right file.\n{self.manual_message(entry)}")
      self._say(f"{d.target}: present but {why}; downloading it again")
      os.remove(target)
    if os.path.isfile(target):  # An archive not unpacked (yet), or a bad file.
      why = check_file(target, d)
      if why is not None:
        if d.manual is not None:
          raise DownloadError(f"{target} {why}: replace it with the right "
                              f"file.\n{self.manual_message(entry)}")
        self._say(f"{d.target}: {why}; downloading it again")
        os.remove(target)
    if not os.path.isfile(target):
      if d.manual is not None:
        self._say(self.manual_message(entry))
        return MANUAL
      os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
      if d.url is not None:
        self._fetch_url(d, target)
      else:
        self._fetch_hf(d, target)
    if d.unpack is not None:
      self._unpack(d, target)
      if not self.keep_archives:
        os.remove(target)
    missing = [p for p in entry.raw_files if not os.path.isfile(self.path(p))]
    if missing:
      more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
      raise DownloadError(
          f"{d.target} from {source_of(d)} did not give the files "
          f"{', '.join(entry.tasks)} read{'' if len(entry.tasks) > 1 else 's'}: "
          f"missing {', '.join(missing[:3])}{more}. The published file may "
          "have changed layout; report it, or put the files there by hand.")
    return "fetched"

  def _verify(self, path: str, d: Download, shown: str) -> None:
    why = check_file(path, d)
    if why is not None:
      os.remove(path)
      raise DownloadError(
          f"{d.target} from {shown}: {why}. The bad file was removed. The "
          "published file may have changed or the transfer was corrupted: "
          "run the command again, and report it if it fails the same way.")

  def _bar(self, total: int | None, initial: int, name: str):
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True,
                unit_divisor=1024, desc=name, disable=not self.progress,
                leave=False)

  def _fetch_url(self, d: Download, target: str) -> None:
    """Streams the URL into TARGET.part, resuming from its length with an
    HTTP Range request; checks it and moves it to the target."""
    url = rewrite_url(d.url, self.url_rewrites)
    part = target + ".part"
    offset = os.path.getsize(part) if os.path.isfile(part) else 0
    if d.size is not None and offset > d.size:
      os.remove(part)  # Longer than the file can be: start again.
      offset = 0
    headers = {"User-Agent": _USER_AGENT}
    if offset:
      headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    self._say(f"{d.target}: downloading {url}"
              + (f" (resuming at {human_size(offset)})" if offset else ""))
    try:
      response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as e:
      if e.code == 416 and offset:  # The .part already holds the whole file.
        self._verify(part, d, url)
        os.replace(part, target)
        return
      raise DownloadError(f"{d.target}: {url} answered HTTP {e.code} "
                          f"{e.reason}.") from None
    except (urllib.error.URLError, OSError) as e:
      raise DownloadError(f"{d.target}: cannot reach {url}: "
                          f"{getattr(e, 'reason', e)}; keep what was fetched "
                          "and run the command again to resume.") from None
    with response:
      if offset and response.status != 206:
        offset = 0  # The server ignored Range: the whole file comes again.
      length = response.headers.get("Content-Length")
      total = offset + int(length) if length is not None else d.size
      mode = "ab" if offset else "wb"
      try:
        with open(part, mode) as f, self._bar(total, offset,
                                              os.path.basename(target)) as bar:
          while chunk := response.read(_CHUNK):
            f.write(chunk)
            bar.update(len(chunk))
      except OSError as e:
        raise DownloadError(f"{d.target}: the transfer from {url} broke off "
                            f"({e}); run the command again to resume.") from None
    if length is not None and os.path.getsize(part) != total:
      raise DownloadError(f"{d.target}: {url} sent {os.path.getsize(part)} of "
                          f"{total} bytes; run the command again to resume.")
    self._verify(part, d, url)
    os.replace(part, target)

  def _fetch_hf(self, d: Download, target: str) -> None:
    """hf_hub_download into its cache, then a checked copy to the target."""
    import huggingface_hub  # pylint: disable=g-import-not-at-top
    from huggingface_hub import utils as hf_utils  # pylint: disable=g-import-not-at-top
    if not self.progress:
      hf_utils.disable_progress_bars()
    shown = source_of(d)
    self._say(f"{d.target}: downloading {shown} from {self.hf_endpoint}")
    try:
      cached = huggingface_hub.hf_hub_download(
          repo_id=d.hf_repo, filename=d.hf_filename, repo_type="dataset",
          revision=d.revision, endpoint=self.hf_endpoint,
          cache_dir=self.hf_cache_dir)
    except Exception as e:  # pylint: disable=broad-except
      # huggingface_hub raises its own HTTP, network and not-found errors;
      # each is one expected failure of this download.
      first = (str(e).splitlines() or [""])[0]
      raise DownloadError(f"{d.target}: cannot download {shown}: "
                          f"{type(e).__name__}: {first}") from None
    part = target + ".part"
    shutil.copyfile(cached, part)
    self._verify(part, d, shown)
    os.replace(part, target)

  # -- unpacking --------------------------------------------------------------

  def _unpack(self, d: Download, archive: str) -> None:
    dest = self.path(d.unpack_to)
    self._say(f"{d.target}: unpacking into {d.unpack_to}")
    try:
      if d.unpack == "bz2":
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        with bz2.open(archive, "rb") as src, open(dest + ".part", "wb") as dst:
          shutil.copyfileobj(src, dst, _CHUNK)
        os.replace(dest + ".part", dest)
      elif d.unpack == "zip":
        _unzip(archive, dest, d.password)
      else:
        _untar(archive, dest)
    except (OSError, EOFError, RuntimeError, NotImplementedError,
            zipfile.BadZipFile, tarfile.TarError) as e:
      # zipfile raises RuntimeError for a wrong or missing password and
      # NotImplementedError for an encryption it cannot read (AES).
      raise DownloadError(f"{archive}: cannot unpack it as {d.unpack} ({e}); "
                          "remove it and run the command again.") from None


def _member_path(dest: str, name: str, strip: str | None) -> str | None:
  """Where an archive member goes under `dest`, or None for the stripped top
  folder itself.

  Raises:
    DownloadError: the name is absolute or climbs out of `dest`.
  """
  parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
  if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
    raise DownloadError(f"archive member {name!r} would land outside "
                        f"{dest}; refusing to unpack it.")
  if strip is not None and parts and parts[0] == strip:
    parts = parts[1:]
  if not parts:
    return None
  return os.path.join(dest, *parts)


def _top_folder_to_strip(names: Sequence[str], dest: str) -> str | None:
  """The archive's single top folder when it is named like `dest`.

  An archive of `human_resp/` unpacked into `opinionqa/human_resp` must not
  give `opinionqa/human_resp/human_resp/`: whether a publisher packed the
  folder or its contents, the files land at the same place.
  """
  tops = set()
  for name in names:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if parts:
      tops.add(parts[0])
  base = os.path.basename(os.path.normpath(dest))
  if tops == {base} and any(
      len([p for p in n.replace("\\", "/").split("/") if p not in ("", ".")]) > 1
      for n in names):
    return base
  return None


def _write_member(src, path: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst, _CHUNK)
  os.replace(path + ".part", path)


def _unzip(archive: str, dest: str, password: str | None = None) -> None:
  with zipfile.ZipFile(archive) as z:
    if password is not None:
      z.setpassword(password.encode("utf-8"))
    infos = z.infolist()
    strip = _top_folder_to_strip([i.filename for i in infos], dest)
    # Every member is checked before the first is written.
    paths = [_member_path(dest, i.filename, strip) for i in infos]
    for info in infos:
      if stat.S_ISLNK(info.external_attr >> 16):
        raise DownloadError(f"archive member {info.filename!r} is a link; "
                            "refusing to unpack it.")
    for info, path in zip(infos, paths):
      if path is None:
        continue
      if info.is_dir():
        os.makedirs(path, exist_ok=True)
        continue
      with z.open(info) as src:
        _write_member(src, path)


def _untar(archive: str, dest: str) -> None:
  with tarfile.open(archive, "r:gz") as tar:
    members = tar.getmembers()
    strip = _top_folder_to_strip([m.name for m in members], dest)
    # Every member is checked before the first is written.
    paths = [_member_path(dest, m.name, strip) for m in members]
    for m in members:
      if not (m.isfile() or m.isdir()):
        raise DownloadError(f"archive member {m.name!r} is a link or special "
                            "file; refusing to unpack it.")
    for m, path in zip(members, paths):
      if path is None:
        continue
      if m.isdir():
        os.makedirs(path, exist_ok=True)
        continue
      src = tar.extractfile(m)
      with src:
        _write_member(src, path)
