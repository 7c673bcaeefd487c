"""Errors that carry a message meant for the user.

The CLI prints these as one line and exits with status 2; anything else is a
bug and keeps its traceback.
"""


class SnnconvError(Exception):
    """Base class of all user-facing errors."""


class ConfigError(SnnconvError):
    """A configuration file or value is wrong (the message names section.key)."""


class UnsupportedLayerError(SnnconvError):
    """A model contains a layer (or layer setting) the converter cannot handle."""


class ModelLoadError(SnnconvError):
    """A model file cannot be read, or reading it would run arbitrary code."""


class DataError(SnnconvError):
    """A dataset file is missing, unreadable or has the wrong shape."""


class ExportError(SnnconvError):
    """A converted network uses a feature the export format cannot express."""


class MissingDependencyError(SnnconvError):
    """An optional package a feature needs is not installed (the message says how)."""
