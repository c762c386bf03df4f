"""The bottom layer: the plain types every stage passes on, and time.

Standard library only, so anything may import it: a prediction or label as validated
(``records``), the series a result belongs to (``series``), a window's result
(``results``), an alert's state (``alerts``), the one exception the command line
knows (``errors``) and every conversion between clocks and formats (``times``).
"""
