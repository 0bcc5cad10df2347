"""Exceptions a user can cause. Each carries one sentence saying what went wrong and what to do."""

from __future__ import annotations


class XAIError(Exception):
    """Base class of every error `xai_core` raises on purpose."""


class InvalidImageError(XAIError, ValueError):
    """The input is not a decodable raster image (or is too large to decode safely)."""


class WeightsUnavailableError(XAIError, RuntimeError):
    """The requested weights can be found neither in a file, nor in the cache, nor online."""


class InvalidWeightsError(XAIError, ValueError):
    """A weights file exists but is not a valid state dict for the model."""


class UnknownNameError(XAIError, KeyError):
    """A model, method, layer or class name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidOptionError(XAIError, ValueError):
    """An option that is not declared, of the wrong type or out of range (a method's options,
    n_components, a target index...)."""


class JobFailed(XAIError, RuntimeError):
    """A dataset job failed once it ran (e.g. its Ray actors could not load the model); the batches
    finished so far are kept, and rerunning the same command goes on."""


class ResultsInUseError(XAIError, RuntimeError):
    """Another process is writing the results folder (a dataset job holds its lock)."""


class Cancelled(XAIError):
    """A long computation was cancelled through its progress callback."""


class InvalidGroundTruthError(XAIError, ValueError):
    """Ground truth that cannot be read or used (a malformed CSV, JSON or XML file, named; an empty
    box; a mask that is not an image)."""


class NotEnoughClassesError(XAIError, ValueError):
    """Too few different classes reach the minimum confidence to fill the grid pointing game's grids."""
