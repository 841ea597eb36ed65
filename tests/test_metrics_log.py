"""MetricsWriter (JSONL + TensorBoard), Progress and StepTimer."""

import glob
import json
import os
import struct

import jax.numpy as jnp
import numpy as np
import pytest

from spectrax.training.metrics_log import MetricsWriter, Progress, StepTimer


def read_jsonl(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def read_events(workdir):
  """Every Event in the TensorBoard files of ``workdir``, parsed from the TFRecord framing."""
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  events = []
  for path in sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*"))):
    with open(path, "rb") as f:
      data = f.read()
    offset = 0
    while offset < len(data):  # [u64 length][u32 crc][payload][u32 crc]
      (length,) = struct.unpack_from("<Q", data, offset)
      payload = data[offset + 12:offset + 12 + length]
      events.append(event_pb2.Event.FromString(payload))
      offset += 12 + length + 4
  return events


def scalars(events):
  """(tag, step, value) of every scalar summary."""
  return [(v.tag, e.step, v.simple_value) for e in events for v in e.summary.value]


def test_jsonl_and_tensorboard(tmp_path):
  with MetricsWriter(tmp_path) as writer:
    writer.write(1, {"train/loss": 2.5, "lr": np.float32(0.5), "tokens": np.int64(7),
                     "mfu": jnp.asarray(0.25), "note": "warmup", "bad": float("nan")})
    writer.write(2, {"train/loss": 1.5})
  lines = read_jsonl(tmp_path)
  assert [line["step"] for line in lines] == [1, 2]
  first = {k: v for k, v in lines[0].items() if k != "time"}
  assert first == {"step": 1, "train/loss": 2.5, "lr": 0.5, "tokens": 7, "mfu": 0.25,
                   "note": "warmup", "bad": "nan"}
  assert isinstance(lines[0]["time"], float)
  got = scalars(read_events(tmp_path))
  assert [s for s in got if not np.isnan(s[2])] == [
      ("train/loss", 1, 2.5), ("lr", 1, 0.5), ("tokens", 1, 7.0), ("mfu", 1, 0.25),
      ("train/loss", 2, 1.5)]
  assert [(tag, step) for tag, step, value in got if np.isnan(value)] == [("bad", 1)]


def test_truncate_after_for_resume(tmp_path):
  with MetricsWriter(tmp_path) as writer:
    for step in range(1, 6):
      writer.write(step, {"loss": float(step)})
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 6, "lo')  # a line cut by a crash
  with MetricsWriter(tmp_path) as writer:  # the resumed run
    assert writer.truncate_after(3) == 3
    assert [line["step"] for line in read_jsonl(tmp_path)] == [1, 2, 3]
    writer.write(4, {"loss": 40.0})
  assert [(line["step"], line["loss"]) for line in read_jsonl(tmp_path)] == [
      (1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0)]
  # Both runs' event files survive, in creation order; TensorBoard hides the old
  # run's steps >= 4 when it reads the START session log at step 4.
  events = read_events(tmp_path)
  assert [(e.step, scalars([e])) for e in events if e.HasField("session_log") or e.summary.value] == [
      (1, [("loss", 1, 1.0)]), (2, [("loss", 2, 2.0)]), (3, [("loss", 3, 3.0)]),
      (4, [("loss", 4, 4.0)]), (5, [("loss", 5, 5.0)]),
      (4, []),  # the START event of the resumed run
      (4, [("loss", 4, 40.0)])]


def test_non_primary_writes_nothing(tmp_path):
  workdir = tmp_path / "run"
  writer = MetricsWriter(workdir, is_primary=False)
  writer.write(1, {"loss": 1.0})
  assert writer.truncate_after(0) == 0
  writer.close()
  assert not workdir.exists()


def test_bad_records_are_refused(tmp_path):
  with MetricsWriter(tmp_path) as writer:
    with pytest.raises(ValueError, match="reserved"):
      writer.write(1, {"step": 3})
    with pytest.raises(TypeError, match="not a scalar"):
      writer.write(1, {"loss": np.zeros(3)})
  with pytest.raises(ValueError, match="closed"):
    writer.write(2, {"loss": 1.0})


def test_progress(capsys):
  with Progress(10, initial_step=4) as bar:
    bar.update(6, {"loss": 1.23456})
    assert bar.step == 6
  err = capsys.readouterr().err
  assert "6/10" in err and "loss=1.235" in err
  with Progress(10, is_primary=False) as quiet:
    quiet.update(3, {"loss": 1.0})
  assert capsys.readouterr().err == ""


def test_step_timer():
  ticks = iter([0.0, 1.0, 1.5, 4.0, 4.0, 4.5, 6.0, 10.0])
  timer = StepTimer(clock=lambda: next(ticks))  # starts at 0
  assert timer.summary(reset=False) == {}
  with timer.data_wait():  # 1.0 -> 1.5
    pass
  timer.lap()  # 4.0
  with timer.data_wait():  # 4.0 -> 4.5
    pass
  timer.lap()  # 6.0
  assert timer.summary() == {"step_time_s": 3.0, "data_wait_s": 0.5, "data_wait_fraction": 1 / 6}
  timer.lap()  # 10.0: a step with no wait
  assert timer.summary() == {"step_time_s": 4.0, "data_wait_s": 0.0, "data_wait_fraction": 0.0}


def test_an_epath_workdir(tmp_path):
  from etils import epath  # pylint: disable=g-import-not-at-top
  with MetricsWriter(epath.Path(tmp_path) / "run") as writer:
    writer.write(1, {"loss": 2.0})
    writer.write(2, {"loss": 1.0})
    assert writer.truncate_after(1) == 1
    writer.write(2, {"loss": 0.5})
  assert [(r["step"], r["loss"]) for r in read_jsonl(tmp_path / "run")] == [(1, 2.0), (2, 0.5)]
  assert scalars(read_events(tmp_path / "run"))[-1] == ("loss", 2, 0.5)


def test_a_bucket_workdir_uploads_the_whole_file(memory_bucket, caplog):
  """gs:// objects cannot be appended to: the JSONL is uploaded whole, at
  most every flush_secs and on close; a resumed writer truncates it."""
  from etils import epath  # pylint: disable=g-import-not-at-top
  workdir = f"{memory_bucket}/run"
  remote = epath.Path(workdir) / "metrics.jsonl"

  def steps():
    return [json.loads(line)["step"] for line in remote.read_text().splitlines()]

  writer = MetricsWriter(workdir, flush_secs=3600)
  writer.write(1, {"loss": 2.0})
  writer.write(2, {"loss": 1.0})
  assert not remote.exists()  # not yet: within flush_secs
  writer.close()
  assert steps() == [1, 2]
  assert any("google-cloud-storage" in r.getMessage() for r in caplog.records)
  writer = MetricsWriter(workdir, flush_secs=0)
  assert writer.truncate_after(1) == 1 and steps() == [1]
  writer.write(2, {"loss": 0.5})
  assert steps() == [1, 2]  # flush_secs=0: every record
  writer.close()
  with pytest.raises(ValueError, match="is closed"):
    writer.write(3, {"loss": 0.1})
