"""The errors lockenv reports to users: data, rendered once by the CLI.

    LockenvError                 message + context (file, line, package, url…) + hint
    ├── ManifestError            pyproject.toml missing, invalid TOML, bad requirement, bad include-group
    ├── PackageIndexError        the index answered badly (junk page, 5xx after retries, auth)
    │   ├── NetworkError         no connection, timeout
    │   │   └── OfflineError     --offline, and the cache lacks pages or files (lists them all)
    │   ├── PackageNotFoundError the index has no such project
    │   ├── BrokenDistributionError one file's metadata is unusable (does not parse, names
    │   │                        another project, unreadable archive)
    │   └── AuthError            credentials missing or refused
    ├── ResolutionError          no set of versions satisfies the requirements
    ├── LockfileError            pylock.toml unreadable or invalid, or a target selects badly
    ├── StaleLockError           the lock does not match pyproject.toml (carries typed reasons)
    ├── IntegrityError           sha256/size mismatch, unsafe wheel path, bad RECORD
    ├── BuildError               a PEP 517 build failed (carries the backend's last lines)
    ├── PythonNotFoundError      no interpreter satisfies the request
    ├── SyncError                anything else that stops a sync
    ├── RunError                 `lockenv run` cannot start the command (not found, not executable)
    └── CacheError               the cache directory cannot be used

Every message is plain text (no markup) that already names what went wrong; `context` (a typed
`ErrorContext`) holds the where (file, line, package, URL), `note` a side remark and `hint` the one thing to do about it.
Errors are immutable: code that knows more raises a new one made with `with_prefix`,
`with_hint`, `with_context` or `with_note`. URLs put in an error must already be redacted (see
`lockenv.urls`).
"""

from __future__ import annotations

from collections.abc import Sequence

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing: see `lockenv.fastpath`
if TYPE_CHECKING:
    from typing import TypeVar

    from lockenv.error_context import ContextFields, ErrorContext

    E = TypeVar("E", bound="LockenvError")


class LockenvError(Exception):
    """Base of every user-facing error; never shown as a traceback unless `--verbose`.

    Immutable once made: a layer that knows more (which package a build was for, what the user
    can do) makes a new error with `with_prefix`/`with_hint`/`with_context`/`with_note` and
    raises that, so an error never changes under the code that raised it."""

    exit_code: int = 2
    """2 for "lockenv could not do it"; 1 is kept for a clean "no": a stale lock, an environment
    that differs (so CI can tell a stale lock from a broken run), as uv does."""

    __slots__ = ("_message", "_hint", "_context", "_details", "_note")

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        context: ErrorContext | ContextFields | None = None,
        details: Sequence[str] = (),
        note: str | None = None,
    ) -> None:
        from lockenv.error_context import ErrorContext  # see that module: not on a clean run's imports

        super().__init__(message)
        self._message = message
        self._hint = hint
        self._context = ErrorContext.of(context)
        self._details: tuple[str, ...] = tuple(details)
        self._note = note

    @property
    def message(self) -> str:
        """What went wrong, in one line, naming the thing it went wrong with."""
        return self._message

    @property
    def hint(self) -> str | None:
        """The one thing to do about it."""
        return self._hint

    @property
    def context(self) -> ErrorContext:
        """Where: file, line, package, url… (see ErrorContext)."""
        return self._context

    @property
    def details(self) -> tuple[str, ...]:
        """Lines shown under the message (expected/actual hashes, a build's last output)."""
        return self._details

    @property
    def note(self) -> str | None:
        """A side remark shown before the hint (pip's `note_stmt`)."""
        return self._note

    def __str__(self) -> str:
        return self._message

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self._message, self._hint, self._context,
                           self._details, self._note))

    # -- derived errors -----------------------------------------------------------------------
    def _derive(self: E, *, message: str | None = None, hint: str | None = None,
                context: ErrorContext | None = None, note: str | None = None) -> E:
        new = type(self)(
            self._message if message is None else message,
            hint=self._hint if hint is None else hint,
            context=self._context if context is None else context,
            details=self._details,
            note=self._note if note is None else note,
        )
        new.__cause__ = self.__cause__
        new.__suppress_context__ = self.__suppress_context__
        return new

    def with_prefix(self: E, prefix: str) -> E:
        """The same error, its message told as part of a larger job: `prefix: message`."""
        return self._derive(message=f"{prefix}: {self._message}")

    def with_hint(self: E, hint: str) -> E:
        """The same error with one more thing to do (appended to the hint it has)."""
        return self._derive(hint=f"{self._hint}; {hint}" if self._hint else hint)

    def with_context(self: E, context: ErrorContext | None = None, /, **fields: object) -> E:
        """The same error with more of where (fields given here win); fields are ErrorContext's."""
        from lockenv.error_context import ErrorContext

        more = ErrorContext.of(fields) if context is None else context.merged(ErrorContext.of(fields))
        return self._derive(context=self._context.merged(more))

    def with_note(self: E, note: str) -> E:
        """The same error with a side remark (appended to the note it has)."""
        return self._derive(note=f"{self._note}\n{note}" if self._note else note)


def _rebuild(cls: type[E], message: str, hint: str | None, context: ErrorContext,
             details: tuple[str, ...], note: str | None) -> E:
    """Unpickling (errors cross process pools in tests and may in future stages)."""
    return cls(message, hint=hint, context=context, details=details, note=note)


class ManifestError(LockenvError):
    """pyproject.toml is missing or says something lockenv cannot use."""


class PackageIndexError(LockenvError):
    """The package index answered with something unusable."""


class NetworkError(PackageIndexError):
    """The index could not be reached at all."""


class OfflineError(NetworkError):
    """`--offline` and the cache lacks something; `details` names every missing page or file."""


class PackageNotFoundError(PackageIndexError):
    """The index does not know the project."""


class BrokenDistributionError(PackageIndexError):
    """One file's metadata cannot be used: for the resolver, a version that does not fit
    (issue 9, point 2), not the end of the lock."""


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


class BuildCycleError(BuildError):
    """A build needs itself (directly or through a chain): no other version choice fixes that."""


class PythonNotFoundError(LockenvError):
    """No interpreter matches what was asked for."""


class SyncError(LockenvError):
    """The environment could not be made to match the lock."""


class RunError(LockenvError):
    """`lockenv run` cannot start the command it was given."""


class CacheError(LockenvError):
    """The cache directory cannot be used (not a directory, not writable, full)."""
