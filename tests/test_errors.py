"""errors.py: errors are immutable; a layer that knows more raises a new one."""

from __future__ import annotations

import pickle

import pytest

from lockenv.errors import BuildError, IntegrityError, LockenvError
from lockenv.ui import render_error


def test_an_error_cannot_be_rewritten_after_it_is_made() -> None:
    exc = BuildError("building x failed", hint="read the output", context={"package": "x"})
    for name in ("message", "hint", "context", "details", "note"):
        with pytest.raises(AttributeError):
            setattr(exc, name, "other")
    with pytest.raises(TypeError):
        exc.context["package"] = "y"  # type: ignore[index]
    assert exc.message == "building x failed" and exc.context == {"package": "x"}


def test_derived_errors_keep_type_and_add_what_the_caller_knows() -> None:
    exc = BuildError("building x failed", hint="read the output", context={"package": "demo"},
                     details=("line 1",))
    told = (exc.with_prefix("build requirements of y").with_hint("pass --no-install-project")
            .with_context(file="pyproject.toml").with_note("x is the project"))
    assert type(told) is BuildError and told is not exc
    assert exc.message == "building x failed" and exc.hint == "read the output"
    assert render_error(told) == "\n".join([
        "error: build requirements of y: building x failed",
        "  package: demo",
        "  file: pyproject.toml",
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
    assert (back.message, back.hint, dict(back.context), back.details, back.note) == (
        exc.message, exc.hint, dict(exc.context), exc.details, exc.note)
