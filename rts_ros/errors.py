"""Exceptions of rts_ros. Every message says what is wrong and what to do about it."""


class RTSError(Exception):
    """Base class of every error raised by rts_ros on purpose."""


class InvalidInputError(RTSError, ValueError):
    """An image, box or mask that cannot be used (wrong shape, dtype, NaN, empty box...)."""


class CheckpointError(RTSError):
    """A checkpoint or weights folder that is missing, corrupt, unsafe or from another network."""


class ConfigError(RTSError, ValueError):
    """A configuration value that is unknown or out of range."""


class NotInitializedError(RTSError, RuntimeError):
    """track() was called before initialize()."""
