"""The one exception base class the command line needs to know.

Kept in a module of its own, with no imports, so that `calmon --help` loads nothing heavy
(pydantic, scipy, SQLAlchemy, Alembic), and a command's ``--help`` only the config's
pydantic models.
"""


class UserError(Exception):
    """A mistake the user can fix in the config, rule files or environment.

    The command line prints the message alone, without a traceback: the message names
    what is wrong and where, and a traceback would only hide it.
    """


def yaml_problem(path: object, exc: Exception) -> str:
    """``rules.yaml:3:7: mapping values are not allowed here`` from a YAML error.

    PyYAML's own text names the stream it parsed (``<unicode string>`` for text read
    first) and spans several lines; this names the file and the position instead.
    Duck-typed, so that this module imports nothing.
    """
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    context, started = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and started is not None:
        context += f" that starts at {started.line + 1}:{started.column + 1}"
    return f"{where}: {problem}" + (f" ({context})" if context else "")
