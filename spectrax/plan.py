"""Command line: python -m spectrax.plan --config=CONFIG --devices=N."""
from absl import app

from spectrax.training.planning import configure_devices, main

if __name__ == "__main__":
  from ml_collections import config_flags as _cf  # pylint: disable=g-import-not-at-top
  _cf.DEFINE_config_file("config", None, "Run config (configs/*.py).",
                         lock_config=True)
  configure_devices()
  app.run(main)
