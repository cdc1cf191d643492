"""Error hierarchy of phaze.

Every error a user can cause derives from :class:`PhazeError`. Bad input raises
:class:`ConfigError`, which is also a :class:`ValueError`, with a message that names the
bad value and what is allowed. Inside a search, infeasibility is a value (``inf``), not an
exception; :class:`InfeasibleError` is raised only at the public edge when a caller asks
for a plan that does not exist.
"""

__all__ = ["ConfigError", "InfeasibleError", "PhazeError"]


class PhazeError(Exception):
    """Base class of every error phaze raises on purpose."""


class ConfigError(PhazeError, ValueError):
    """A specification or argument is invalid; the message names the field."""


class InfeasibleError(PhazeError):
    """No plan or design satisfies the constraints (for example memory)."""
