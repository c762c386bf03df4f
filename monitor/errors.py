"""The one exception base class the command line needs to know.

Kept in a module of its own, with no imports, so that `calmon --help` and every command's
argument parsing load nothing heavy (pydantic, scipy, SQLAlchemy, Alembic).
"""


class UserError(Exception):
    """A mistake the user can fix in the config, rule files or environment.

    The command line prints the message alone, without a traceback: the message names
    what is wrong and where, and a traceback would only hide it.
    """
