"""calmon: tells teams when their model's probabilities can no longer be trusted."""

__version__ = "0.1.0"
