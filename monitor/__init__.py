"""calmon: tells teams when their model's probabilities can no longer be trusted."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``from monitor import evaluate``, imported on first use: `calmon --help` and the
    daemon do not pay for pandas and pyarrow.

    By name, not an import statement: every layer imports this package (for
    ``__version__``), and none but the top ones may depend on ``monitor.offline``.
    """
    if name == "evaluate":
        import importlib

        return importlib.import_module("monitor.offline.api").evaluate
    raise AttributeError(f"module 'monitor' has no attribute {name!r}")
