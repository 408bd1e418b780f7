"""The errors lockenv reports to users: data, rendered once by the CLI.

    LockenvError                 message + context (file, line, package, url…) + hint
    ├── ManifestError            pyproject.toml missing, invalid TOML, bad requirement, bad include-group
    ├── PackageIndexError        the index answered badly (junk page, 5xx after retries, auth)
    │   ├── NetworkError         no connection, timeout
    │   ├── PackageNotFoundError the index has no such project
    │   └── AuthError            credentials missing or refused
    ├── ResolutionError          no set of versions satisfies the requirements
    ├── LockfileError            pylock.toml unreadable or invalid, or a target selects badly
    ├── StaleLockError           the lock does not match pyproject.toml (carries typed reasons)
    ├── IntegrityError           sha256/size mismatch, unsafe wheel path, bad RECORD
    ├── BuildError               a PEP 517 build failed (carries the backend's last lines)
    ├── PythonNotFoundError      no interpreter satisfies the request
    ├── SyncError                anything else that stops a sync
    └── CacheError               the cache directory cannot be used

Every message is plain text (no markup) that already names what went wrong; `context` holds the
where (file, line, package, URL) and `hint` the one thing to do about it. URLs put in an error
must already be redacted (see `lockenv.urls`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class LockenvError(Exception):
    """Base of every user-facing error; never shown as a traceback unless `--verbose`."""

    exit_code: int = 2
    """2 for "lockenv could not do it"; 1 is kept for a clean "no": a stale lock, an environment
    that differs (so CI can tell a stale lock from a broken run), as uv does."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        context: Mapping[str, object] | None = None,
        details: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.context: dict[str, object] = dict(context or {})
        self.details: tuple[str, ...] = tuple(details)

    def __str__(self) -> str:
        return self.message


class ManifestError(LockenvError):
    """pyproject.toml is missing or says something lockenv cannot use."""


class PackageIndexError(LockenvError):
    """The package index answered with something unusable."""


class NetworkError(PackageIndexError):
    """The index could not be reached at all."""


class PackageNotFoundError(PackageIndexError):
    """The index does not know the project."""


class AuthError(PackageIndexError):
    """The index wants credentials that were not found, or refused the ones sent."""


class ResolutionError(LockenvError):
    """The requirements cannot all be satisfied."""


class LockfileError(LockenvError):
    """pylock.toml cannot be read, is not valid PEP 751, or does not serve a target."""


class StaleLockError(LockenvError):
    """The lock is out of date with pyproject.toml; `details` lists the typed reasons."""

    exit_code = 1


class IntegrityError(LockenvError):
    """A file from the index or the cache is not what the lock says, or is unsafe to install."""


class BuildError(LockenvError):
    """A PEP 517 build (metadata or wheel) failed."""


class PythonNotFoundError(LockenvError):
    """No interpreter matches what was asked for."""


class SyncError(LockenvError):
    """The environment could not be made to match the lock."""


class CacheError(LockenvError):
    """The cache directory cannot be used (not a directory, not writable, full)."""
