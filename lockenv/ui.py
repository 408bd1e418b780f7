"""The `Reporter` protocol the stages talk to, a silent `NullReporter`, and the terminal one.

Data (plans, reports a user may pipe) goes to stdout; progress, warnings and errors to stderr.
Plain text always makes sense: colour is decoration, off with NO_COLOR or when not a terminal.
rich is imported only when a progress bar is actually drawn, to keep the no-op path fast.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
import contextlib
from contextlib import contextmanager

from lockenv.errors import LockenvError


def counted(n: int, noun: str) -> str:
    """`1 package`, `2 packages`: counts in messages agree with their number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing: see `lockenv.fastpath`
if TYPE_CHECKING:
    from typing import Protocol, TextIO

    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID
else:
    Protocol = object  # `Reporter` is a Protocol to mypy; nothing asks it at run time


class Progress:
    """A handle the stages advance; does nothing unless a bar is on screen."""

    def __init__(self, bar: RichProgress | None = None, task: TaskID | None = None) -> None:
        self._bar = bar
        self._task = task

    def advance(self, amount: float = 1) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, amount)

    def describe(self, text: str) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=text)


class Reporter(Protocol):
    """What a stage may tell the user. Stages take one and never probe it with `hasattr`."""

    quiet: bool
    verbose: bool

    def data(self, line: str) -> None: ...
    def status(self, message: str) -> None: ...
    def debug(self, message: str) -> None: ...
    def warn(self, message: str, hint: str | None = None) -> None: ...
    def error(self, exc: LockenvError) -> None: ...
    def activity(self, message: str) -> None: ...
    @property
    def interactive(self) -> bool: ...
    def progress(self, description: str, total: float | None = None) -> contextlib.AbstractContextManager[Progress]: ...


class NullReporter:
    """Says nothing: for nested work whose output would only be noise (a build env's venv)."""

    quiet = True
    verbose = False
    interactive = False

    def data(self, line: str) -> None:
        pass

    def status(self, message: str) -> None:
        pass

    def debug(self, message: str) -> None:
        pass

    def warn(self, message: str, hint: str | None = None) -> None:
        pass

    def error(self, exc: LockenvError) -> None:
        pass

    def activity(self, message: str) -> None:
        pass

    @contextmanager
    def progress(self, description: str, total: float | None = None) -> Iterator[Progress]:
        yield Progress()


class TerminalReporter:
    """The Reporter of the CLI: data on stdout, the rest on stderr. Tests may pass other streams."""

    def __init__(
        self,
        *,
        quiet: bool = False,
        verbose: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._started = time.perf_counter()
        self._live: Progress | None = None
        """The bar on screen, if any: `activity` describes it, lines print above it."""
        self._console: object | None = None

    # -- stdout: data -------------------------------------------------------------------------
    def data(self, line: str) -> None:
        """A line of the command's result (a plan line, a report line); none with --quiet,
        where the exit code is the answer."""
        if not self.quiet:
            print(line, file=self.out, flush=True)

    # -- stderr: status ------------------------------------------------------------------------
    def status(self, message: str) -> None:
        """A short status line ("Resolved 12 packages in 0.41s")."""
        if not self.quiet:
            self._line(self.err, message)

    def _line(self, stream: TextIO, text: str) -> None:
        """One write per line, so lines from worker threads never run together; above the
        bar while one is on screen (a plain write would tear it)."""
        console = self._console
        if console is not None and stream is self.err:
            console.print(text, markup=False, highlight=False, soft_wrap=True)  # type: ignore[attr-defined]
            return
        stream.write(text + "\n")
        stream.flush()

    def activity(self, message: str) -> None:
        """What is happening now (a page fetched, an sdist built, targets resolved), as the
        description of the bar on screen; nothing without one (piped, --quiet, --verbose:
        there the debug lines say it)."""
        live = self._live
        if live is not None:
            live.describe(message)

    def debug(self, message: str) -> None:
        """Only with --verbose; stamped with the seconds since the reporter was made."""
        if self.verbose:
            elapsed = time.perf_counter() - self._started
            self._line(self.err, f"debug: [{elapsed:6.3f}s] {message}")

    def warn(self, message: str, hint: str | None = None) -> None:
        """Also called from worker threads (index retries): one write per warning."""
        self._line(self.err, f"warning: {message}" + (f"\n\nhint: {hint}" if hint else ""))

    def error(self, exc: LockenvError) -> None:
        print(render_error(exc), file=self.err, flush=True)

    @property
    def interactive(self) -> bool:
        return not self.quiet and _isatty(self.err)

    @contextmanager
    def progress(self, description: str, total: float | None = None) -> Iterator[Progress]:
        """A progress bar on a terminal; nothing when piped, quiet or verbose."""
        if not self.interactive or self.verbose:
            yield Progress()
            return
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, ProgressColumn, SpinnerColumn, TextColumn
        from rich.progress import Progress as RichProgress

        console = Console(file=self.err, no_color=bool(os.environ.get("NO_COLOR")))
        columns: list[ProgressColumn] = [TextColumn("{task.description}"), BarColumn()]
        if total is None:  # no amount to measure: a spinner beside what is happening
            columns = [SpinnerColumn(), TextColumn("{task.description}")]
        elif total > 1024:
            columns.append(DownloadColumn())
        with RichProgress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(description, total=total)
            outer = (self._live, self._console)
            self._live, self._console = Progress(bar, task), console
            try:
                yield self._live
            finally:
                self._live, self._console = outer


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def render_error(exc: LockenvError) -> str:
    """`error: message`, the context lines, the details, then `hint:` after a blank line."""
    lines = [f"error: {exc.message}"]
    for key, value in exc.context.items():
        if value is not None and f"{value}" not in exc.message:
            lines.append(f"  {key}: {value}")
    lines.extend(f"  {d}" for d in exc.details)
    if exc.note:
        lines.append(f"note: {exc.note}")
    if exc.hint:
        lines.append("")
        lines.append(f"hint: {exc.hint}")
    return "\n".join(lines)


def run_use_case(reporter: Reporter, call: Callable[[], int | None]) -> int:
    """Call a use case and return its exit code: a LockenvError is its message and code, an
    interrupt 130, any other exception an "internal error" (the traceback under --verbose).
    One place for the CLI and the fast path's sync (which runs without the CLI framework)."""
    try:
        return int(call() or 0)
    except LockenvError as exc:  # a user-facing error: its message is the whole story
        reporter.error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so plainly; the traceback only under --verbose
        import traceback
        from pathlib import Path

        from lockenv.cache import explain_os_error

        if reporter.verbose:
            traceback.print_exc(file=sys.stderr)
        known = explain_os_error(exc) if isinstance(exc, OSError) else None
        if known is not None:  # a read-only or full cache: the user's to fix (F24, F27)
            reporter.error(known)
            return known.exit_code
        where = traceback.extract_tb(exc.__traceback__)[-1]
        print(
            f"error: internal error: {type(exc).__name__}: {exc} "
            f"(at {Path(where.filename).name}:{where.lineno})\n\n"
            "hint: this is a bug in lockenv; re-run with --verbose and report the output",
            file=sys.stderr,
        )
        return 2
