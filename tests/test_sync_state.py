"""The no-op fingerprint's options key: derived from the options dataclass's fields, so a new
option cannot be forgotten (a sync with it set would otherwise be taken for a no-op)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lockenv.ops.sync import SyncOptions
from lockenv.sync.state import NOT_IN_KEY, options_key


def test_a_new_option_field_changes_the_key(tmp_path: Path) -> None:
    @dataclasses.dataclass(frozen=True)
    class Wider(SyncOptions):
        new_flag: bool = False  # an option added later, listed nowhere else

    assert options_key(Wider(project=tmp_path, new_flag=True), "1") != \
        options_key(Wider(project=tmp_path, new_flag=False), "1")


@pytest.mark.parametrize("field", [f for f in dataclasses.fields(SyncOptions)
                                   if f.name not in NOT_IN_KEY], ids=lambda f: f.name)
def test_every_option_that_decides_the_venv_is_in_the_key(tmp_path: Path,
                                                           field: dataclasses.Field) -> None:
    plain = SyncOptions(project=tmp_path)
    other = {bool: True, str: "3.12"}.get(type(getattr(plain, field.name)))
    if other is None:
        other = ("x",) if isinstance(getattr(plain, field.name), tuple) else tmp_path / "other.toml"
    changed = dataclasses.replace(plain, **{field.name: other})
    if field.name == "install_project":
        changed = dataclasses.replace(plain, install_project=False)
    assert options_key(changed, "1") != options_key(plain, "1")


def test_order_of_repeated_options_and_what_does_not_decide_the_venv_leave_the_key(tmp_path: Path) -> None:
    one = SyncOptions(project=tmp_path, extras=("a", "b"))
    assert options_key(one, "1") == options_key(SyncOptions(project=tmp_path, extras=("b", "a")), "1")
    assert options_key(one, "1") == options_key(dataclasses.replace(one, dry_run=True, frozen=True), "1")
    assert options_key(one, "1") != options_key(one, "2")  # lockenv's version


def test_the_venv_shape_lists_every_directory_and_fails_whole_when_one_cannot_be_listed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shape (what a no-op sync trusts) has every directory; an error listing one fails
    it, never leaves a shape without that directory's subtree."""
    from lockenv.sync import state

    for i in range(60):
        (tmp_path / "lib" / f"pkg{i}" / "sub").mkdir(parents=True)
    listing = state._entries_digest

    def entries_digest(path: str, subdirs: list[str] | None) -> str | None:
        if path.endswith("pkg41"):
            raise RuntimeError(f"cannot list {path}")
        return listing(path, subdirs)

    shape = state.venv_shape(tmp_path)
    assert sorted(shape) == sorted(["", "lib", *(f"lib/pkg{i}" for i in range(60)),
                                    *(f"lib/pkg{i}/sub" for i in range(60))])
    monkeypatch.setattr(state, "_entries_digest", entries_digest)
    with pytest.raises(RuntimeError, match="cannot list"):
        state.venv_shape(tmp_path)
