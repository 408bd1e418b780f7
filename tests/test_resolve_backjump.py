"""resolvelib's backjumping, as lockenv runs it: a backjump must not double the lists of
incompatible candidates (aws-shaped projects handed `find_matches` lists of 10.9 million
entries, 19,068 distinct), and the resolution must stay resolvelib's own."""

from __future__ import annotations

from collections import Counter
from typing import Any, NamedTuple

from resolvelib import AbstractProvider, BaseReporter, Resolver
from resolvelib.resolvers import ResolutionImpossible

from lockenv.resolve.backjump import BackjumpResolver

# A universe (found by a random search) where resolvelib backjumps over the same packages many
# times: name -> version -> [(dependency, versions it allows)].
UNIVERSE: dict[str, dict[int, list[tuple[str, list[int]]]]] = {
    "a": {0: [("c", [0, 6, 8]), ("d", [4])],
          1: [("b", [3, 5, 8]), ("c", [0]), ("d", [3]), ("e", [0, 1, 3, 4, 5]), ("f", [1, 5, 6, 7])]},
    "b": {0: [], 1: [("d", [2]), ("e", [5]), ("f", [0, 2])], 2: [], 3: [("d", [3, 6])],
          4: [("e", [0, 2, 6, 7]), ("f", [2, 7])],
          5: [("c", [5]), ("d", [0, 2, 3, 5]), ("e", [0, 3, 5, 8]), ("f", [1, 6, 7, 8])], 6: [],
          7: [("f", [3, 4, 5, 6, 8])], 8: [("c", [1, 7]), ("e", [4])]},
    "c": {0: [("f", [0, 4, 5])], 1: [("f", [4, 5, 6, 7, 8])], 2: [("e", [0, 2, 3, 4])], 3: [("e", [4])],
          4: [], 5: [("d", [1, 4, 8]), ("f", [0, 1, 7])], 6: [], 7: [], 8: [("f", [0, 1, 2])]},
    "d": {0: [("f", [8])], 1: [("e", [6, 7])], 2: [], 3: [("e", [1, 5, 6])], 4: [("e", [2])],
          5: [("e", [6]), ("f", [0, 5])]},
    "e": {0: [("f", [0, 2, 3, 6, 7])], 1: [("f", [2, 3, 4, 5])]},
    "f": {0: [], 1: [], 2: [], 3: [], 4: []},
}


class Req(NamedTuple):
    name: str
    allowed: frozenset[int]


class Cand(NamedTuple):
    name: str
    version: int


CANDIDATES = {(n, v): Cand(n, v) for n, versions in UNIVERSE.items() for v in versions}
"""One object per version, as a provider that memoises its candidates hands out."""


class _Provider(AbstractProvider):
    """Newest first; records how often one candidate came back in a list of incompatibilities."""

    def __init__(self) -> None:
        self.most_repeats = 0

    def identify(self, requirement_or_candidate: Any) -> str:
        return str(requirement_or_candidate.name)

    def get_preference(self, identifier: Any, *args: Any, **kwargs: Any) -> Any:
        return identifier

    def find_matches(self, identifier: Any, requirements: Any, incompatibilities: Any) -> list[Cand]:
        bad = list(incompatibilities[identifier])
        if bad:
            self.most_repeats = max(self.most_repeats, max(Counter(map(id, bad)).values()))
        reqs = list(requirements[identifier])
        excluded = {c.version for c in bad}
        return [CANDIDATES[identifier, v] for v in sorted(UNIVERSE[identifier], reverse=True)
                if v not in excluded and all(v in r.allowed for r in reqs)]

    def is_satisfied_by(self, requirement: Any, candidate: Any) -> bool:
        return bool(candidate.version in requirement.allowed)

    def get_dependencies(self, candidate: Any) -> list[Req]:
        return [Req(n, frozenset(vs)) for n, vs in UNIVERSE[candidate.name][candidate.version]]


def _resolve(cls: type) -> tuple[object, int]:
    """The pins (or that there are none), and the most repeats of one incompatible candidate."""
    provider = _Provider()
    roots = [Req("a", frozenset(range(9))), Req("b", frozenset(range(9)))]
    try:
        result = cls(provider, BaseReporter()).resolve(roots, max_rounds=500)
    except ResolutionImpossible as exc:
        return sorted(map(str, exc.causes)), provider.most_repeats
    return {k: v.version for k, v in result.mapping.items()}, provider.most_repeats


def test_backjumps_do_not_double_the_incompatibilities() -> None:
    plain, plain_repeats = _resolve(Resolver)
    ours, repeats = _resolve(BackjumpResolver)
    assert ours == plain  # the same outcome (here: no solution, with the same causes)
    assert plain_repeats >= 10  # resolvelib alone: one candidate handed over 20 times
    # once from the criterion, once as resolvelib appends the same list, once kept on a backjump
    assert repeats <= 3


def test_a_resolvelib_without_the_internals_falls_back_to_its_own_resolver(monkeypatch: Any) -> None:
    """`resolvelib>=1.1` allows releases without the internals `backjump` builds on: lockenv
    must then resolve with resolvelib's own resolver, not fail to import."""
    import sys

    from resolvelib import Resolver

    from lockenv.resolve import single

    assert single._resolver_class() is BackjumpResolver
    monkeypatch.setitem(sys.modules, "lockenv.resolve.backjump", None)  # import fails
    assert single._resolver_class() is Resolver
