"""The audio front end (snnconv.audio.FrontEnd) and the bundled keyword data."""

import json

import numpy as np
import pytest

from snnconv.audio import FrontEnd
from snnconv.audio.data import (bundled_keyword_clips_path, bundled_keyword_events_path,
                                load_keyword_clips, load_keyword_events)
from snnconv.errors import ConfigError, DataError

SR = 16000


def tone(freq, seconds=0.5, amplitude=0.5):
    t = np.arange(int(seconds * SR)) / SR
    return amplitude * np.sin(2 * np.pi * freq * t)


def test_tone_excites_its_own_channel_most():
    fe = FrontEnd(gain=10.0)
    for k in (3, 8, 13):
        per_channel = fe(tone(fe.center_frequencies[k])).sum(axis=0).astype(int)
        assert per_channel.argmax() == k
        assert per_channel[k] > 2 * per_channel[k - 1]
        assert per_channel[k] > 2 * per_channel[k + 1]
        assert per_channel[k - 1] > per_channel[k - 3]


def test_shape_dtype_and_partial_steps_dropped():
    fe = FrontEnd()
    x = np.random.default_rng(0).normal(0, 0.1, (3, 16079))
    e = fe(x)
    assert e.shape == (3, 100, 16) and e.dtype == np.uint8
    assert fe(x[0]).shape == (100, 16)
    assert fe.num_steps(16079) == 100 and fe.num_steps(16080) == 100
    assert fe.num_steps(159) == 0
    assert FrontEnd(dt=0.005, num_channels=4).num_steps(16000) == 200
    # the dropped tail does not change the full steps
    np.testing.assert_array_equal(FrontEnd(normalize=False)(x[:, :16000]),
                                  FrontEnd(normalize=False)(x))


def test_counts_clipped_at_max_events_per_step():
    loud = np.random.default_rng(1).normal(0, 1.0, (2, 4000))
    e = FrontEnd(gain=1000.0)(loud)
    assert e.max() == 15 and (e == 15).mean() > 0.9
    assert FrontEnd(gain=1000.0, max_events_per_step=7)(loud).max() == 7


def test_silence_gives_no_events():
    assert not FrontEnd()(np.zeros((2, 3200))).any()
    assert not FrontEnd(normalize=False)(np.zeros(3200, np.int16)).any()


def test_louder_input_gives_more_events_without_normalisation():
    fe = FrontEnd(normalize=False, gain=100.0)
    x = np.random.default_rng(2).normal(0, 0.01, 8000)
    totals = [int(fe(a * x).sum()) for a in (0.5, 1, 2, 4, 8)]
    assert totals == sorted(totals) and totals[0] < totals[-1]
    assert totals[0] > 0


def test_normalisation_makes_level_irrelevant():
    x = np.random.default_rng(3).normal(0, 0.05, (2, 8000))
    fe = FrontEnd()
    np.testing.assert_array_equal(fe(x), fe(4 * x))


def test_int16_is_scaled_to_full_range():
    x = np.random.default_rng(4).normal(0, 0.1, 4000)
    as_int = np.round(x * 32768).astype(np.int16)
    fe = FrontEnd(normalize=False)
    np.testing.assert_array_equal(fe(as_int), fe(as_int / 32768.0))


def test_config_round_trip_and_repr():
    fe = FrontEnd(num_channels=8, f_min=200, f_max=4000, q=3, gain=25, normalize=False)
    cfg = fe.get_config()
    assert all(isinstance(v, (bool, int, float)) for v in cfg.values())
    assert json.loads(json.dumps(cfg)) == cfg
    again = FrontEnd.from_config(cfg)
    assert again.get_config() == cfg and again == fe
    np.testing.assert_allclose(again.center_frequencies, fe.center_frequencies)
    assert "gain=25.0" in repr(fe) and "normalize=False" in repr(fe)
    with pytest.raises(ConfigError, match="unknown key"):
        FrontEnd.from_config({**cfg, "threshold": 1})


def test_shipped_events_match_the_front_end_on_shipped_clips():
    events = load_keyword_events()
    fe = FrontEnd()
    assert events.frontend == fe.get_config()
    assert events.x_train.shape == (800, 100, 16) and events.x_test.shape == (400, 100, 16)
    assert events.x_train.dtype == np.uint8 and events.x_train.max() <= 15
    assert np.bincount(events.y_train).tolist() == [100] * 8
    assert np.bincount(events.y_test).tolist() == [50] * 8
    clips = load_keyword_clips()
    assert clips.x_test.shape == (16, 16000) and clips.x_test.dtype == np.int16
    assert clips.words == events.words and len(clips.words) == 8
    with np.load(bundled_keyword_events_path()) as f:
        test_index = f["test_index"]
    with np.load(bundled_keyword_clips_path()) as f:
        rows = np.searchsorted(test_index, f["test_index"])
    np.testing.assert_array_equal(events.y_test[rows], clips.y_test)
    mine = fe(clips.x_test, sample_rate=clips.sample_rate).astype(int)
    shipped = events.x_test[rows].astype(int)
    # exact on the machine that made them; allow rare off-by-one from float rounding elsewhere
    assert np.abs(mine - shipped).max() <= 1 and np.mean(mine != shipped) < 1e-3


def test_loader_checks_front_end_and_files(tmp_path):
    with pytest.raises(DataError, match="differs in gain"):
        load_keyword_events(frontend=FrontEnd(gain=41.0))
    with pytest.raises(DataError, match="not found"):
        load_keyword_clips(tmp_path / "nope.npz")
    np.savez(tmp_path / "bad.npz", x_test=np.zeros((2, 10)))
    with pytest.raises(DataError, match="missing key"):
        load_keyword_events(tmp_path / "bad.npz")


@pytest.mark.parametrize("call, words", [
    (lambda fe: fe(np.zeros(16000), sample_rate=8000), ["8000", "16000", "resample"]),
    (lambda fe: fe(np.zeros((2, 2, 16000))), ["shape", "(2, 2, 16000)"]),
    (lambda fe: fe(np.zeros((2, 100))), ["100 samples", "shorter than one step"]),
    (lambda fe: fe(np.array(["a", "b"])), ["numeric", "dtype"]),
    (lambda fe: fe(np.zeros(1600, np.uint8)), ["unsigned"]),
])
def test_bad_input_is_a_one_line_data_error(call, words):
    with pytest.raises(DataError) as err:
        call(FrontEnd())
    msg = str(err.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_non_finite_samples_are_counted_and_located():
    x = np.zeros((4, 1600))
    x[2, 5] = np.nan
    x[3, 7:9] = np.inf
    with pytest.raises(DataError, match=r"3 NaN/inf sample\(s\), the first in clip 2"):
        FrontEnd()(x)


@pytest.mark.parametrize("kwargs, words", [
    ({"num_channels": 0}, ["num_channels", "1..1024"]),
    ({"num_channels": 2.5}, ["num_channels", "integer"]),
    ({"q": 0}, ["q", "positive"]),
    ({"f_min": 7000, "f_max": 100}, ["f_min", "f_max", "below"]),
    ({"dt": 0}, ["dt", "positive"]),
    ({"dt": 0.00001}, ["dt", "whole number of samples"]),
    ({"sample_rate": 8000}, ["sample_rate", "too low", "f_max", "Nyquist"]),
    ({"gain": -1}, ["gain", "positive"]),
    ({"normalize": "yes"}, ["normalize", "True or False"]),
    ({"max_events_per_step": 300}, ["max_events_per_step", "1..255"]),
])
def test_bad_constructor_arguments_are_one_line_config_errors(kwargs, words):
    with pytest.raises(ConfigError) as err:
        FrontEnd(**kwargs)
    msg = str(err.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
