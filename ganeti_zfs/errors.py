"""The exceptions every command turns into one line on stderr."""


class Error(Exception):
    """An expected failure: bad input, bad config, a refused operation.

    Commands catch it, print its message as one line on stderr and exit
    non-zero. Anything else escaping is a bug and gets a traceback in debug
    mode.
    """


class UsageError(Error):
    """The caller (Ganeti, an admin, cron) gave us something invalid."""


class ConfigError(Error):
    """The configuration file or an ext-param is invalid."""
