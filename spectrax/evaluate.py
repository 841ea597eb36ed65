"""Command line: python -m spectrax.evaluate --model=... --suite_dir=suite."""
from absl import app

from spectrax.evaluation.runner import main

if __name__ == "__main__":
  app.run(main)
