"""The lock's `python_version` terms are short and mean exactly what dep-logic's long form meant."""

from __future__ import annotations

import random

import pytest
from packaging.markers import Marker

from lockenv.resolve.tidy import tidy_marker

PYTHONS = [f"{major}.{minor}" for major in (2, 3, 4) for minor in range(21)]


@pytest.mark.parametrize(("text", "short"), [
    ('python_version != "3.10" and python_version > "3.9" and python_version != "3.11"', 'python_version >= "3.12"'),
    ('python_version < "3.11" and python_version >= "3.10" and platform_machine == "x86_64"',
     'python_version == "3.10" and platform_machine == "x86_64"'),
    ('"dev" in dependency_groups and python_version != "3.8" and python_version >= "3.8"',
     '"dev" in dependency_groups and python_version >= "3.9"'),
    ('sys_platform == "win32" or python_version <= "3.12" and python_version != "3.12"',
     'sys_platform == "win32" or python_version < "3.12"'),
])
def test_redundant_python_terms_are_shortened(text: str, short: str) -> None:
    assert tidy_marker(text) == short


@pytest.mark.parametrize("text", [
    'python_version > "3.11"',                                      # one term: the spelling stays
    'python_version < "3.12" and python_version != "3.10"',          # already the fewest
    'python_version == "3.10" and python_version != "3.10"',         # nothing left: left alone
    'python_full_version != "3.10.0" and python_full_version > "3.9"',  # not MAJOR.MINOR only
    'python_version != "3.10" and python_version > "3.9.1"',          # not a MAJOR.MINOR value
])
def test_terms_that_cannot_be_shortened_keep_their_text(text: str) -> None:
    assert tidy_marker(text) == text


def _random_marker(rng: random.Random, depth: int = 0) -> str:
    def atom() -> str:
        roll = rng.random()
        if roll < 0.65:
            return f'python_version {rng.choice(["<", "<=", ">", ">=", "==", "!="])} "3.{rng.randint(7, 14)}"'
        if roll < 0.75:
            return f'python_version {rng.choice(["<", ">=", "!="])} "{rng.choice(["2.7", "3.0", "4.0"])}"'
        if roll < 0.9:
            return f'sys_platform {rng.choice(["==", "!="])} "{rng.choice(["linux", "win32"])}"'
        return '"dev" in dependency_groups'
    parts = [f"({_random_marker(rng, depth + 1)})" if depth < 2 and rng.random() < 0.2 else atom()
             for _ in range(rng.randint(1, 4))]
    text = parts[0]
    for part in parts[1:]:
        text += rng.choice([" and ", " and ", " or "]) + part
    return text


def test_shortened_markers_hold_on_exactly_the_same_environments() -> None:
    rng = random.Random(20261206)
    shortened = 0
    for _ in range(400):
        text = _random_marker(rng)
        short = tidy_marker(text)
        shortened += short != text
        before, after = Marker(text), Marker(short)
        for python in PYTHONS:
            for platform in ("linux", "win32"):
                for groups in (frozenset(), frozenset({"dev"})):
                    env = {"python_version": python, "python_full_version": f"{python}.1",
                           "sys_platform": platform, "extras": frozenset(), "dependency_groups": groups}
                    assert before.evaluate(env) == after.evaluate(env), (text, short, env)  # type: ignore[arg-type]
    assert shortened > 60  # the property is exercised, not vacuous
