"""ml_collections configs: `python -m spectrax.train --config=configs/NAME.py`."""
