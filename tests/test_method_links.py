"""Every method-document anchor (`docs/method.md#...`) cited in the code, tests and docs exists:
the method document is where a reader follows a deliberate difference."""

from __future__ import annotations

import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _slug(heading: str) -> str:
  """GitHub's anchor of a Markdown heading."""
  text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
  return text.replace(" ", "-")


def test_every_cited_method_anchor_exists():
  with open(os.path.join(ROOT, "docs", "method.md"), encoding="utf-8") as f:
    anchors = {_slug(h) for h in re.findall(r"^#+ (.*)$", f.read(), re.M)}
  files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
  missing = {}
  for name in files:
    if not name.endswith((".py", ".md", ".sh", ".html")):
      continue
    with open(os.path.join(ROOT, name), encoding="utf-8",
              errors="replace") as f:
      text = f.read()
    for anchor in re.findall(r"method\.md#([\w\-]+)", text):
      if anchor not in anchors:
        missing.setdefault(anchor, []).append(name)
  assert missing == {}
