"""Fixtures shared by the test modules.

* ``bundled`` — the bundled MNIST CNN and data subset, its graph normalised
  on 200 samples (the default percentile normalisation), built once per session;
* ``dense_model``, ``conv_model``, ``branched_model`` — small random Keras
  models (factories taking a seed), and ``normalised`` to parse and
  max-normalise one on uniform random inputs (the same functions are in
  :mod:`helpers` for use at import time, e.g. in ``parametrize``);
* ``write_config`` — a config for the bundled model and data, results in
  ``out/`` beside it (:func:`helpers.write_bundled_config`).
"""
from __future__ import annotations

import types

import pytest

from helpers import (make_branched_model, make_conv_model, make_dense_model,
                     normalise_on_random, write_bundled_config)


@pytest.fixture(scope="session")
def bundled():
    """``.ann``, ``.data`` (x_test, y_test, x_norm) and ``.graph`` (normalised)."""
    import snnconv
    from snnconv.data import bundled_dataset_path, bundled_model_path
    ann = snnconv.load_model(bundled_model_path())
    data = snnconv.load_dataset(bundled_dataset_path(), (28, 28, 1), 1 / 255)
    graph = snnconv.normalize(snnconv.parse(ann), data.x_norm[:200])
    return types.SimpleNamespace(ann=ann, data=data, graph=graph)


@pytest.fixture
def dense_model():
    return make_dense_model


@pytest.fixture
def conv_model():
    return make_conv_model


@pytest.fixture
def branched_model():
    return make_branched_model


@pytest.fixture
def normalised():
    return normalise_on_random


@pytest.fixture
def write_config():
    return write_bundled_config
