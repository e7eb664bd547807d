"""The one exception tree of modeltap.

Every error a user can cause or meet derives from :class:`ModeltapError`. Messages are
sentences that say what happened and what to do next; the CLI prints them as they are
and exits with the class's ``exit_code`` (mapped in one place, ``monitor.cli``).

Exit codes: 0 success, 1 a check failed or the work could not finish, 2 bad usage,
configuration or input, 3 a service (database, broker) is unreachable.

The whole tree, with the classes defined beside the code that raises them::

    ModeltapError (1)
    ├── ConfigError (2) ............ a key of the configuration, or an environment override
    │   └── ListenError (2) ........ a listen address that is taken or not this machine's
    ├── InputError (2) ............. a file, payload or argument
    │   ├── EventFormatError ....... modeltap.events: a captured event off the wire or spool
    │   └── LabelError ............. modeltap.labels: a label, naming its item and field
    ├── StorageError (1)
    │   ├── StorageUnavailableError (3) ... the database cannot be reached
    │   ├── StorageDataError (1) .......... the database refuses the data itself
    │   └── SchemaOutOfDateError (2) ...... run `monitor db upgrade`
    ├── TransportError (1)
    │   └── TransportUnavailableError (3) . the broker cannot be reached
    ├── MissingExtraError (2) ...... an optional package, with its pip install line
    └── RejectedRowsError (1) ...... monitor.commands.labels: rows skipped by --skip-invalid

Internal ones, which never reach the command line (each is answered or handled where it
is raised):

    collector.ingest.Refused ........... an HTTP ingest request answered 4xx/5xx, unstored
    collector.upstream.UpstreamError ... the model server gave no whole answer (502)
    └── UpstreamTimeout ................ it gave none in time (504)
    collector.adapters.PayloadError .... a body that yields no rows (the request is kept,
                                         with the reason in capture_note)
"""

from __future__ import annotations

import errno


class ModeltapError(Exception):
    """Base of every modeltap error; ``str(err)`` is the user-facing message."""

    exit_code = 1


class ConfigError(ModeltapError):
    """The configuration file or an environment override is invalid."""

    exit_code = 2


class ListenError(ConfigError):
    """An address to listen on cannot be used: another process holds the port, or the
    address is not this machine's."""

    @classmethod
    def binding(cls, address: str, setting: str, error: OSError) -> ListenError:
        """The error for ``error`` raised while binding ``address`` (from ``setting``)."""
        reason = {
            errno.EADDRINUSE: "the port is taken by another process",
            errno.EADDRNOTAVAIL: "the address is not one of this machine's",
            errno.EACCES: "ports below 1024 need privileges",
        }.get(error.errno or 0, error.strerror or str(error))
        return cls(
            f"cannot listen on {address} ({setting}): {reason}; "
            f"stop what holds it or choose another address for {setting}"
        )


class InputError(ModeltapError):
    """A file, payload or argument given by the user cannot be used as it is."""

    exit_code = 2


class StorageError(ModeltapError):
    """The store failed to read or write."""


class StorageUnavailableError(StorageError):
    """The database cannot be reached."""

    exit_code = 3


class StorageDataError(StorageError):
    """The database refused the data itself (a value out of range, an invalid character):
    writing the same data again will fail again, unlike a database that is down."""


class SchemaOutOfDateError(StorageError):
    """The database schema is older than this version of modeltap expects."""

    exit_code = 2


class TransportError(ModeltapError):
    """The broker or another transport failed."""


class TransportUnavailableError(TransportError):
    """The broker cannot be reached."""

    exit_code = 3


class MissingExtraError(ModeltapError):
    """An optional dependency is needed for this feature and is not installed."""

    exit_code = 2

    def __init__(self, feature: str, extra: str, module: str) -> None:
        super().__init__(
            f"{feature} needs the optional package '{module}'; "
            f"install it with: pip install 'modeltap[{extra}]'"
        )
        self.extra = extra
        self.module = module
