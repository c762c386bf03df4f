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
