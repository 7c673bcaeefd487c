"""Keeping TensorFlow's own log messages out of snnconv's output.

TensorFlow prints start-up lines straight to file descriptor 2 from C++
(``cudart_stub.cc:31] Could not find cuda drivers``, ``failed call to cuInit
… (303)``, ``All log messages before absl::InitializeLog()``, oneDNN and
CPU-feature notes) whatever ``TF_CPP_MIN_LOG_LEVEL`` says, and logs from Python
through the ``tensorflow`` logger (function retracing warnings; ``TensorArray
… was never used`` blocks after Ctrl-C).

:func:`import_tensorflow_quietly` imports TensorFlow and Keras and lets them
find their devices while file descriptor 2 points at a temporary file; then it
restores it and passes on every captured line that is not a TensorFlow log
line. :func:`hide_python_logs` drops the ``tensorflow`` logger's records (and
the Python warnings TensorFlow and Keras raise). The command line uses both
unless ``output.verbose = 3`` or the environment variable
``SNNCONV_TF_LOGS=1`` asks for TensorFlow's messages. The Python API only
drops the retracing warnings (:func:`drop_retracing_warnings`), which repeated
``snnconv.evaluate`` calls on different networks trigger by design.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import warnings

#: the environment variable that shows TensorFlow's messages (``1``, ``true``, ``yes``)
ENV_SHOW = "SNNCONV_TF_LOGS"

# A line TensorFlow's C++ logging writes: absl's "I0000 00:00:17.5   123 file.cc:31] ...",
# the older "2024-01-01 12:00:00.000000: I tensorflow/...cc:31] ...", absl's notice before
# its initialisation, and the continuation line of the CPU-feature note.
_TF_LINE = re.compile(
    rb"^(?:[IWE]\d{4} \d\d:\d\d:[\d.]+\s+\d+ [\w./+-]+:\d+\] "
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] [\w./+-]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions:.*rebuild TensorFlow)")

_RETRACING = "triggered tf.function retracing"


def show_requested(verbose: int = 0) -> bool:
    """Whether TensorFlow's messages are wanted: ``verbose >= 3`` or ``SNNCONV_TF_LOGS``."""
    return verbose >= 3 or os.environ.get(ENV_SHOW, "").strip().lower() in ("1", "true", "yes",
                                                                              "on")


def is_tf_log_line(line: bytes | str) -> bool:
    """Whether one line of output is a TensorFlow C++ log line."""
    if isinstance(line, str):
        line = line.encode("utf-8", "replace")
    return bool(_TF_LINE.match(line))


def import_tensorflow_quietly(show: bool = False) -> None:
    """Import TensorFlow and Keras (and initialise their devices) without their start-up lines.

    Does nothing but the import when ``show``, or when TensorFlow is already
    imported (its start-up lines are out by then).
    """
    if show or "tensorflow" in sys.modules:
        _import_and_init()
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):
        pass
    try:
        saved = os.dup(2)
    except OSError:                      # no file descriptor 2 to protect
        _import_and_init()
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            _import_and_init()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().splitlines(keepends=True)
                    if not is_tf_log_line(line)]
            if kept:
                try:
                    sys.stderr.buffer.write(b"".join(kept))
                    sys.stderr.flush()
                except (AttributeError, ValueError, OSError):
                    os.write(2, b"".join(kept))


def _import_and_init() -> None:
    import keras  # noqa: F401
    import tensorflow as tf
    tf.config.list_physical_devices()    # device probing (cuInit) happens here


class _DropAll(logging.Filter):
    def filter(self, record):
        return False


class _DropRetracing(logging.Filter):
    def filter(self, record):
        try:
            return _RETRACING not in record.getMessage()
        except Exception:                # a record whose arguments do not format
            return True


_HIDE = _DropAll()
_RETRACE = _DropRetracing()


def hide_python_logs(show: bool = False) -> None:
    """Drop (or with ``show``, keep) the records of the ``tensorflow`` and ``absl``
    loggers and the Python warnings TensorFlow and Keras raise; idempotent."""
    for name in ("tensorflow", "absl"):
        logger = logging.getLogger(name)
        if show:
            logger.removeFilter(_HIDE)
        else:
            logger.addFilter(_HIDE)
    if not show:
        warnings.filterwarnings("ignore", module=r"(tensorflow|keras|tf_keras|absl)(\.|$)")


def drop_retracing_warnings() -> None:
    """Drop TensorFlow's "triggered tf.function retracing" warnings; idempotent."""
    logging.getLogger("tensorflow").addFilter(_RETRACE)
