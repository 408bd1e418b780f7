"""errors.py: errors are immutable; a layer that knows more raises a new one."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from lockenv.error_context import ErrorContext
from lockenv.errors import BuildError, IntegrityError, LockenvError, LockfileError
from lockenv.ui import render_error


def test_an_error_cannot_be_rewritten_after_it_is_made() -> None:
    exc = BuildError("building x failed", hint="read the output", context={"package": "x"})
    for name in ("message", "hint", "context", "details", "note"):
        with pytest.raises(AttributeError):
            setattr(exc, name, "other")
    with pytest.raises(AttributeError):
        exc.context.package = "y"  # type: ignore[misc]
    assert exc.message == "building x failed" and exc.context == ErrorContext(package="x")


def test_context_is_typed_and_refuses_unknown_keys() -> None:
    exc = LockfileError("bad", context={"file": Path("pylock.toml"), "line": "3",
                                        "lock-version": 2.0, "groups": ["dev", "docs"]})
    assert exc.context == ErrorContext(file="pylock.toml", line=3, lock_version="2.0",
                                       groups=("dev", "docs"))
    assert render_error(exc).splitlines()[1:] == [
        "  file: pylock.toml", "  line: 3", "  groups: dev, docs", "  lock-version: 2.0"]
    with pytest.raises(TypeError, match="unknown error context key 'pakage'"):
        LockfileError("bad", context={"pakage": "x"})
    with pytest.raises(TypeError):
        exc.with_context(pakage="x")


def test_derived_errors_keep_type_and_add_what_the_caller_knows() -> None:
    exc = BuildError("building x failed", hint="read the output", context={"package": "demo"},
                     details=("line 1",))
    told = (exc.with_prefix("build requirements of y").with_hint("pass --no-install-project")
            .with_context(file="pyproject.toml").with_note("x is the project"))
    assert type(told) is BuildError and told is not exc
    assert exc.message == "building x failed" and exc.hint == "read the output"
    assert render_error(told) == "\n".join([
        "error: build requirements of y: building x failed",
        "  file: pyproject.toml",
        "  package: demo",
        "  line 1",
        "note: x is the project",
        "",
        "hint: read the output; pass --no-install-project",
    ])


def test_an_error_survives_pickling_whole() -> None:
    exc = IntegrityError("bad hash", hint="try again", context={"url": "https://h/x.whl"},
                         details=("expected sha256: 0",), note="n")
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is IntegrityError and isinstance(back, LockenvError)
    assert (back.message, back.hint, back.context, back.details, back.note) == (
        exc.message, exc.hint, exc.context, exc.details, exc.note)
