"""labutils: the small library behind the audio style transfer lab's notebooks.

Data flows one way: audio -> spectral -> nets -> losses -> transfer -> spectral -> audio.
"""
from .errors import AudioError, ConfigError, LabError

__version__ = "0.1.0"
__all__ = ["AudioError", "ConfigError", "LabError", "__version__"]
