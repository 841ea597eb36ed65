"""spectrax/__init__.py: the curated namespace resolves, lazily."""

import subprocess
import sys

import pytest

import spectrax


@pytest.mark.parametrize("name", spectrax.__all__)
def test_every_export_resolves_to_its_module(name):
  value = getattr(spectrax, name)
  module = spectrax._EXPORTS[name]  # pylint: disable=protected-access
  assert value.__module__.startswith(module.rsplit(".", 1)[0])


def test_unknown_name_is_an_attribute_error():
  with pytest.raises(AttributeError, match="has no attribute 'nope'"):
    spectrax.nope  # pylint: disable=pointless-statement


def test_import_is_cheap_and_data_needs_no_jax():
  code = ("import sys, spectrax; spectrax.format_episode; "
          "assert 'jax' not in sys.modules, 'jax imported'; "
          "spectrax.Scorer; assert 'jax' in sys.modules")
  subprocess.run([sys.executable, "-c", code], check=True)


def test_format_episode_through_the_namespace():
  segments = spectrax.format_episode(
      [{"role": "description", "content": "Flip a coin."},
       {"role": "output", "content": "heads"}], "colon")
  assert segments == [("Description: Flip a coin.\n\nOutput:", False),
                      (" heads\n\n", True)]
