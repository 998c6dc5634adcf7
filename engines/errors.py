"""Exceptions raised by library code. Only CLI ``main()`` functions turn them into exit codes."""


class PolypwatchError(Exception):
    """Base class of every error polypwatch raises on purpose."""


class ConfigError(PolypwatchError):
    """A configuration file, key or value is invalid."""


class SourceError(PolypwatchError):
    """A video source cannot be opened or read."""


class FrameUnreadable(SourceError):
    """One frame of a finite source (a file of a frame folder) cannot be read; the source goes on with the next,
    and the frame is counted (``read_errors``), never a quiet end of the recording."""

    def __init__(self, message: str, index: int = -1):
        super().__init__(message)
        self.index = index


class SourceEnded(PolypwatchError):
    """A finite source (file, folder) has no more frames."""


class WireError(PolypwatchError):
    """A message on the wire is malformed, oversized, of an unknown version or topic."""


class ModelError(PolypwatchError):
    """A model file is missing, unreadable or lacks the metadata polypwatch needs."""


class BackendError(PolypwatchError):
    """An inference backend is unavailable or failed."""


class TruthError(PolypwatchError):
    """A ground-truth file is missing, malformed or does not match its video."""


class DatasetError(PolypwatchError):
    """A training or evaluation dataset folder is malformed."""


class Interrupted(PolypwatchError):
    """The user stopped the work (SIGINT / SIGTERM) before it was complete."""


class CheckFailed(PolypwatchError):
    """A measured check did not pass (a parity check, a soak's flat memory, a complete GPU report)."""
