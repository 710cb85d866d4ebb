"""The lab's error types: each carries one line naming the problem and the fix."""


class LabError(Exception):
    """Base of the lab's user-facing errors (bad input, bad option). The CLI prints it as one line."""


class AudioError(LabError):
    """An audio file or clip that cannot be used: missing, unreadable, empty, silent, too short, NaN."""


class ConfigError(LabError, ValueError):
    """A hyperparameter or option outside its allowed range."""
