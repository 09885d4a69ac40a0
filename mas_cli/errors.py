"""The errors a user can fix: each message is one line that says what to change, and every
command reports them the same way (`error: <message>` on stderr, exit status 2, no traceback)."""


class MasError(Exception):
    """Something the user can fix; the message says how."""


class ConfigError(MasError, ValueError):
    """Bad input: a setting, an override, a model spec."""


class StoreError(MasError):
    """A store entry is missing, corrupt or foreign."""


class UnsafeFileError(StoreError):
    """A stored file holds objects that would run code when unpickled (refused; nothing ran)."""
