"""Build the spoken-keyword files that ship with snnconv from the full keyword set.

Writes two ``np.savez_compressed`` files into ``snnconv/data/``:

* ``spoken_keywords_events.npz``: the default :class:`snnconv.audio.FrontEnd`'s
  events for a class-balanced subset: ``x_train`` uint8 (800, 100, 16) and
  ``x_test`` uint8 (400, 100, 16) (100 and 50 clips per word), labels
  ``y_train``/``y_test`` uint8, ``words``, ``train_index``/``test_index``
  (int32 rows of the full file's splits) and ``frontend``, the front end's
  ``get_config()`` as a JSON string.
* ``spoken_keywords_clips.npz``: 16 raw test clips (2 per word, all among the
  subset's test clips) in the full file's layout: ``x_train`` int16 (0, 16000)
  (empty), ``y_train``, ``x_test`` int16 (16, 16000), ``y_test``, ``words``,
  ``sample_rate``, plus ``test_index``.

The choice is deterministic: for each word in turn, ``np.random.default_rng(seed)``
(``--seed``, default 0) picks that many of its rows without replacement; the
rows are then sorted. The clips are the first two picked test rows of each word.

The source (``--data``, default ``../shared/data/spoken_keywords.npz`` relative
to the repository root) holds synthetic speech made with espeak-ng 1.51 and sox.

    python examples/make_keyword_subset.py [--data PATH] [--out-dir DIR] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from snnconv.audio import FrontEnd
from snnconv.audio.data import CLIPS_FILE, EVENTS_FILE, load_keyword_clips

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "spoken_keywords.npz"
DEFAULT_OUT = REPO_ROOT / "snnconv" / "data"

PER_WORD_TRAIN = 100
PER_WORD_TEST = 50
CLIPS_PER_WORD = 2


def balanced_picks(labels: np.ndarray, per_word: int, rng) -> list[np.ndarray]:
    """For each class, ``per_word`` of its row indices picked at random, in pick order."""
    return [rng.choice(np.flatnonzero(labels == k), per_word, replace=False)
            for k in range(int(labels.max()) + 1)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out-dir", default=str(DEFAULT_OUT))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    clips = load_keyword_clips(args.data)
    rng = np.random.default_rng(args.seed)
    train_index = np.sort(np.concatenate(balanced_picks(clips.y_train, PER_WORD_TRAIN, rng)))
    test_picks = balanced_picks(clips.y_test, PER_WORD_TEST, rng)
    test_index = np.sort(np.concatenate(test_picks))
    clip_index = np.sort(np.concatenate([p[:CLIPS_PER_WORD] for p in test_picks]))

    fe = FrontEnd(sample_rate=clips.sample_rate)
    words = np.array(clips.words)
    out = Path(args.out_dir)
    events_path, clips_path = out / EVENTS_FILE, out / CLIPS_FILE
    np.savez_compressed(
        events_path,
        x_train=fe(clips.x_train[train_index]), y_train=clips.y_train[train_index].astype(np.uint8),
        x_test=fe(clips.x_test[test_index]), y_test=clips.y_test[test_index].astype(np.uint8),
        words=words, train_index=train_index.astype(np.int32),
        test_index=test_index.astype(np.int32), frontend=np.array(json.dumps(fe.get_config())))
    np.savez_compressed(
        clips_path,
        x_train=np.zeros((0, clips.x_test.shape[1]), np.int16), y_train=np.zeros(0, np.uint8),
        x_test=clips.x_test[clip_index].astype(np.int16),
        y_test=clips.y_test[clip_index].astype(np.uint8), words=words,
        sample_rate=np.int32(clips.sample_rate), test_index=clip_index.astype(np.int32))
    for path in (events_path, clips_path):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
