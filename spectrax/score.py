"""Command line: python -m spectrax.score --input=REQUESTS --output=SCORES."""
import sys

from spectrax.scoring.job import main

if __name__ == "__main__":
  sys.exit(main())
