"""Command line: python -m spectrax.train --config=configs/tiny.py --workdir=DIR."""
from absl import app

from spectrax.training.loop import main

if __name__ == "__main__":
  app.run(main)
