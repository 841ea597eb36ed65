"""The evaluation report: `metrics.json` and a self-contained `report.html`.

`write_report({model: {suite: result}}, out_dir)` takes the suites' results
(spectrax/evaluation/suites.py) for one or several models and writes PNG
plots beside the HTML, referenced by relative paths, so the directory can be
copied or served as it is. Plots use matplotlib's `Figure` directly (the Agg
canvas), never pyplot, so no global backend state is touched.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

_STEER_KEYS = ("loss", "all_acc", "first_acc")
_DIST_KEYS = ("js_divergence", "kl_divergence", "total_variation",
              "wasserstein", "mode_match", "coverage")
_DIV_KEYS = ("percent_valid", "yield", "unique_gens_pct", "usable_unique",
             "raw_unique", "pairwise_collision", "coverage")
_MAX_SHOWN_QUESTIONS = 4


def _slug(name: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _fmt(value: Any) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return "–"
  if isinstance(value, float):
    return f"{value:.4g}"
  return html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
  body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row)
                 + "</tr>" for row in rows)
  return f"<table><tr>{head}</tr>{body}</table>"


class _Writer:
  """Collects HTML sections and saves figures under `out_dir`."""

  def __init__(self, out_dir: str):
    self.out_dir = out_dir
    self.parts: list[str] = []
    self.images: list[str] = []

  def add(self, text: str) -> None:
    self.parts.append(text)

  def figure(self, fig: Figure, name: str, alt: str) -> None:
    filename = _slug(name) + ".png"
    fig.savefig(os.path.join(self.out_dir, filename), dpi=90,
                bbox_inches="tight")
    self.images.append(filename)
    self.add(f'<img src="{filename}" alt="{html.escape(alt)}">')


def _models_with(results: dict, suite: str) -> dict[str, dict]:
  return {m: r[suite] for m, r in results.items() if suite in r}


def _union_tasks(per_model: dict[str, dict]) -> list[str]:
  return sorted({t for r in per_model.values() for t in r["tasks"]})


def _steerability(w: _Writer, per_model: dict[str, dict]) -> None:
  w.add("<h2>In-context steerability</h2>"
        "<p class=cite>Definitions: docs/method.md#steerability in the spectrax repository.</p>"
        "<p>Per output: summed NLL over its loss tokens (terminal included), "
        "all-token and first-token greedy accuracy. Headline (the release's "
        "fixed-k figure): means over the episodes that reach k, cut after "
        "example k, outputs 1…k (k chosen once per task at 2048 tokens, "
        "k ≤ 1 raised to 2). All outputs: means over every output with "
        "example index ≥ 1 of the sampled, capped episodes. ECE (over all "
        "outputs) pairs the first token's top-1 probability with "
        "first-token accuracy.</p>")
  all_keys = [f"{k} (all outputs)" for k in _STEER_KEYS]
  w.add(_table(["model", "template"] + list(_STEER_KEYS) + all_keys + ["ece"],
               [[m, r["template"]] + [r["summary"].get(k) for k in _STEER_KEYS]
                + [r["summary"].get("all_outputs", {}).get(k) for k in _STEER_KEYS]
                + [r["summary"].get("ece")]
                for m, r in per_model.items()]))
  rows = []
  for task in _union_tasks(per_model):
    for m, r in per_model.items():
      t = r["tasks"].get(task)
      if t:
        rows.append([task, m, t["k"], t["fixed_k_episodes"]]
                    + [t.get(k) for k in _STEER_KEYS]
                    + [t["all_outputs"].get(k) for k in _STEER_KEYS]
                    + [t.get("ece"), t["episodes"]])
  w.add(_table(["task", "model", "k", "episodes at k"] + list(_STEER_KEYS)
               + all_keys + ["ece", "episodes (all outputs)"], rows))
  for task in _union_tasks(per_model):
    fig = Figure(figsize=(10, 3.4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for m, r in per_model.items():
      curve = r["tasks"].get(task, {}).get("curve")
      if not curve:
        continue
      x = curve["example_index"]
      ax_loss.plot(x, _nan(curve["loss"]), marker=".", label=m)
      ax_acc.plot(x, _nan(curve["all_acc"]), marker=".", label=m)
    ax_loss.set(title=f"{task}: loss per output", xlabel="example index",
                ylabel="summed NLL (nats)")
    ax_acc.set(title=f"{task}: all-token accuracy", xlabel="example index",
               ylabel="all_acc", ylim=(-0.02, 1.02))
    for ax in (ax_loss, ax_acc):
      ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.legend(fontsize="small")
    w.figure(fig, f"steerability_{task}", f"loss and accuracy vs example "
             f"index, {task}")
  fig = Figure(figsize=(4.6, 4.4))
  ax = fig.subplots()
  ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
  for m, r in per_model.items():
    bins = r["summary"].get("calibration")
    if not bins:
      continue
    pts = [(c, a) for c, a, n in zip(bins["confidence"], bins["accuracy"],
                                     bins["count"]) if n]
    if pts:
      ax.plot(*zip(*pts), marker="o",
              label=f"{m} (ECE {_fmt(r['summary'].get('pooled_ece'))})")
  ax.set(title="Calibration (outputs with index ≥ 1)",
         xlabel="confidence (top-1 prob., first token)",
         ylabel="first-token accuracy", xlim=(0, 1), ylim=(0, 1))
  ax.legend(fontsize="small")
  w.figure(fig, "calibration", "reliability diagram")


def _nan(values: Sequence[float | None]) -> list[float]:
  return [np.nan if v is None else v for v in values]


def _distributional(w: _Writer, per_model: dict[str, dict]) -> None:
  w.add("<h2>Distributional alignment</h2>"
        "<p class=cite>Definitions: docs/method.md#distributional-alignment in the spectrax repository.</p>"
        "<p>Per question: option "
        "probabilities from summed log-likelihoods, normalised; metrics with "
        "ε = 1e-6, natural log; means per task. Wasserstein only for ordinal "
        "options.</p>")
  tasks = _union_tasks(per_model)
  rows = []
  for task in tasks:
    for m, r in per_model.items():
      t = r["tasks"].get(task)
      if t:
        rows.append([task, m, t["num_questions"]]
                    + [t["metrics"].get(k) for k in _DIST_KEYS]
                    + [t["boundary_mismatch"], t["truncated"]])
  w.add(_table(["task", "model", "questions"] + list(_DIST_KEYS)
               + ["boundary mismatches", "truncated"], rows))
  fig = Figure(figsize=(max(5, 1.3 * len(tasks) * max(1, len(per_model))
                            / 2), 3.6))
  ax = fig.subplots()
  width = 0.8 / max(1, len(per_model))
  for i, (m, r) in enumerate(per_model.items()):
    js = [r["tasks"].get(t, {}).get("metrics", {}).get("js_divergence")
          for t in tasks]
    ax.bar(np.arange(len(tasks)) + i * width, _nan(js), width, label=m)
  ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks,
                rotation=30, ha="right")
  ax.set(title="Jensen–Shannon divergence per task (lower is better)",
         ylabel="JS (nats)")
  ax.legend(fontsize="small")
  w.figure(fig, "distributional_js", "JS divergence per task per model")
  for task in tasks:
    shown = {}
    for m, r in per_model.items():
      for ex in r["tasks"].get(task, {}).get("examples", []):
        shown.setdefault(ex["id"], {"ex": ex, "models": {}})["models"][m] = ex
    if not shown:
      continue
    items = list(shown.values())[:_MAX_SHOWN_QUESTIONS]
    fig = Figure(figsize=(4.2 * len(items), 3.4))
    axes = np.atleast_1d(fig.subplots(1, len(items)))
    for ax, item in zip(axes, items):
      ex = item["ex"]
      series = [("target", ex["target"])] + [
          (m, e["model"]) for m, e in item["models"].items() if e["model"]]
      bar_w = 0.8 / len(series)
      x = np.arange(len(ex["options"]))
      for j, (label, probs) in enumerate(series):
        ax.bar(x + j * bar_w, probs, bar_w, label=label)
      ax.set_xticks(x + 0.4 - bar_w / 2, [o[:12] for o in ex["options"]],
                    rotation=30, ha="right", fontsize="small")
      ax.set(title=f"{task}: {ex['id']}"[:48], ylim=(0, 1),
             ylabel="probability")
    axes[0].legend(fontsize="small")
    w.figure(fig, f"distributional_{task}", f"model vs target, {task}")


def _diversity(w: _Writer, per_model: dict[str, dict]) -> None:
  w.add("<h2>Valid output coverage</h2>"
        "<p class=cite>Definitions: docs/method.md#valid-output-coverage in the spectrax repository.</p>"
        "<p>Samples at temperature "
        "1, cut at the first newline or terminal token, stripped. Coverage "
        "counts distinct members of the finite valid set hit.</p>")
  rows = [[m, v] + [s.get(k) for k in _DIV_KEYS]
          for m, r in per_model.items() for v, s in r["summary"].items()]
  w.add(_table(["model", "prompt"] + list(_DIV_KEYS), rows))
  rows = []
  for task in _union_tasks(per_model):
    for m, r in per_model.items():
      for v, s in r["tasks"].get(task, {}).items():
        top = ", ".join(f"{g['text']!r}×{g['count']}"
                        + ("" if g["valid"] else " ✗") for g in s["top"][:5])
        rows.append([task, m, v, s["percent_valid"], s["yield"],
                     s["unique_gens_pct"], s["coverage"], top])
  w.add(_table(["task", "model", "prompt", "percent_valid", "yield",
                "unique_gens_pct", "coverage", "most common (✗ invalid)"],
               rows))


def _capabilities(w: _Writer, per_model: dict[str, dict]) -> None:
  w.add("<h2>Capabilities</h2>"
        "<p class=cite>Definitions: docs/method.md#capabilities in the spectrax repository.</p>"
        "<p>Accuracy over questions with "
        "example index ≥ 1; multiple choice by answer-letter "
        "log-likelihood.</p>")
  tasks = _union_tasks(per_model)
  rows = [[t] + [r["tasks"].get(t, {}).get("accuracy")
                 for r in per_model.values()] for t in tasks]
  rows.append(["mean"] + [r["summary"]["accuracy"]
                          for r in per_model.values()])
  w.add(_table(["task"] + list(per_model), rows))


_SECTIONS = (("steerability", _steerability),
             ("distributional", _distributional),
             ("diversity", _diversity),
             ("capabilities", _capabilities))

_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1200px}"
          "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
          "td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}"
          "th{background:#f0f0f0}img{max-width:100%;display:block;"
          "margin:1em 0}")


def _json_default(value):
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def write_report(results_by_model: dict[str, dict[str, Any]], out_dir: str
                 ) -> str:
  """Writes `metrics.json`, the PNGs and `report.html`; returns the HTML path.

  Args:
    results_by_model: model name -> suite name -> that suite's result dict.
    out_dir: created if missing; files in it are overwritten.
  """
  if not results_by_model:
    raise ValueError("write_report needs the results of at least one model.")
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "metrics.json"), "w") as f:
    json.dump(results_by_model, f, indent=1, default=_json_default)
  w = _Writer(out_dir)
  w.add(f"<h1>Spectrum evaluation</h1><p>Models: "
        f"{html.escape(', '.join(results_by_model))}. All numbers are in "
        "<a href=\"metrics.json\">metrics.json</a>.</p>")
  for suite, section in _SECTIONS:
    per_model = _models_with(results_by_model, suite)
    if per_model:
      section(w, per_model)
  path = os.path.join(out_dir, "report.html")
  with open(path, "w", encoding="utf-8") as f:
    f.write("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>Spectrum evaluation</title><style>{_STYLE}</style>"
            "</head><body>" + "\n".join(w.parts) + "</body></html>")
  return path
