"""dep-logic's marker algebra (`&`, `|` of ANDs and ORs), the same steps and results, faster.

Marker propagation (resolve/graph.py) spends most of a library-shaped lock in dep-logic's
normal forms: a union is simplified through its CNF and that CNF's DNF, and each is built by
`MultiMarker.of`/`MarkerUnion.of`, which compare every term with every other one, twice or three
times over, through abstract-class `isinstance` checks and list scans. `Algebra` follows
dep-logic 0.7's `utils.cnf`/`dnf`/`union`/`intersection`, `MultiMarker.of`/`MarkerUnion.of` and
their `union_simplify`/`intersect_simplify` step by step (the single markers' own `&`/`|` are
still dep-logic's), so the results are dep-logic's own, term for term, and the lock keeps its
bytes. What it changes is only how much is recomputed: sets instead of list scans, each pairwise
step and each term a CNF or DNF builds from the same parts remembered for the same objects
(dep-logic's operations are pure), and no last pass over a list the previous pass did not change
(it would repeat the same comparisons). One `Algebra` serves one propagation, so what it
remembers is freed with it, and its results are what dep-logic gives from empty caches:
dep-logic's own caches live as long as the process and match markers by equality, under which
`sys_platform == "a" or sys_platform == "b"` equals the same values in the other order, so what
ran earlier could decide the order of such values in its text (the lock's markers are now a
function of the graph alone; of eleven real projects' locks ten were unchanged, and one had
such values the other way round in seven markers; the bench locks are unchanged).

Below the limits (`CNF_LIMIT`, `DNF_LIMIT`) a union is dep-logic's; past them it is not
normalised further (see `Algebra.union`), because a union of two ANDs of n terms each has an
unsimplified DNF of up to 2^(n*n) conjunctions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import operator
from itertools import product

from dep_logic.markers import AnyMarker, BaseMarker, EmptyMarker, MarkerUnion, MultiMarker
from dep_logic.markers.single import EqualityMarkerUnion, InequalityMultiMarker, MarkerExpression

__all__ = ["CNF_LIMIT", "DNF_LIMIT", "Algebra", "form_size"]

_SINGLE = (MarkerExpression, EqualityMarkerUnion, InequalityMultiMarker)
"""dep-logic's SingleMarker classes (exact types: `type(x) in` is much cheaper than its ABC)."""
_COMPOUND = (MultiMarker, MarkerUnion)

CNF_LIMIT = 1500
"""Most clauses the CNF of a union may have before it is simplified (see `Algebra.union`)."""
DNF_LIMIT = 256
"""Most conjunctions that CNF's DNF may have before it is simplified."""

_ABSORBED = AnyMarker()
"""A pairwise step's answer when `of` must return at once (an AND became empty, an OR any)."""


def _make(cls: type[MultiMarker] | type[MarkerUnion], markers: Sequence[BaseMarker]) -> BaseMarker:
    """`cls(*markers)` for terms already flat and without duplicates (dep-logic's constructor
    would flatten them again, comparing every pair)."""
    made = object.__new__(cls)
    object.__setattr__(made, "markers", tuple(markers))
    return made


def _flatten(items: Iterable[BaseMarker], cls: type) -> list[BaseMarker]:
    """dep-logic's `flatten_items`: nested `cls` terms spliced in, the first of equal terms kept
    (a set where it scans its list: the markers' hashes agree with their equality)."""
    out: list[BaseMarker] = []
    seen: set[BaseMarker] = set()
    for item in items:
        for sub in (_flatten(item.markers, cls) if type(item) is cls else (item,)):  # type: ignore[attr-defined]
            if sub not in seen:
                seen.add(sub)
                out.append(sub)
    return out


class Algebra:
    """`and_`/`or_` of dep-logic markers, with what one propagation computes remembered."""

    def __init__(self) -> None:
        self._cnf: dict[BaseMarker, BaseMarker] = {}
        self._dnf: dict[BaseMarker, BaseMarker] = {}
        # Keyed by the objects' ids (AND, OR apart), the objects kept in the value so that no id
        # is reused while it is remembered.
        self._made: tuple[dict[int, tuple[tuple[BaseMarker, ...], BaseMarker]], ...] = ({}, {})
        self._pairs: tuple[dict[int, tuple[BaseMarker, BaseMarker, BaseMarker | None]], ...] = ({}, {})

    # -- the operators, dispatched as Python dispatches dep-logic's `&` and `|` ----------------

    def and_(self, a: BaseMarker, b: BaseMarker) -> BaseMarker:
        if type(a) in _COMPOUND:
            return self.dnf(_make(MultiMarker, _flatten((a, b), MultiMarker)))
        result = a.__and__(b)
        if result is NotImplemented:
            if type(b) in _COMPOUND:
                return self.dnf(_make(MultiMarker, _flatten((b, a), MultiMarker)))
            result = b.__rand__(a)  # type: ignore[attr-defined]
        return result

    def or_(self, a: BaseMarker, b: BaseMarker) -> BaseMarker:
        if type(a) in _COMPOUND:
            return self.union(a, b)
        result = a.__or__(b)
        if result is NotImplemented:
            if type(b) in _COMPOUND:
                return self.union(b, a)
            result = b.__ror__(a)  # type: ignore[attr-defined]
        return result

    def union(self, a: BaseMarker, b: BaseMarker) -> BaseMarker:
        """dep-logic's `utils.union(a, b)`: the simplest of the union, its CNF and its DNF."""
        unnormalized: BaseMarker = _make(MarkerUnion, _flatten((a, b), MarkerUnion))
        while type(unnormalized) in _COMPOUND and len(unnormalized.markers) == 1:  # type: ignore[attr-defined]
            unnormalized = unnormalized.markers[0]  # type: ignore[attr-defined]
        # dep-logic's MultiMarker.union_simplify unions the unshared parts of two ANDs: on a
        # library with extras, groups and forks by Python, PyPy, ppc64le and Emscripten, ANDs of
        # 8-10 terms whose CNF has 24 clauses and its DNF up to 16,384 conjunctions, ~1 s each,
        # 20,000 such unions: a 113 s lock (uv: 0.6 s). Past the limits the union stays as it is
        # (or as its CNF where that is simpler): the same environments, not simplified further.
        if form_size(unnormalized, MarkerUnion) > CNF_LIMIT:
            return unnormalized
        conjunction = self.cnf(unnormalized)
        if type(conjunction) is not MultiMarker:
            return conjunction
        if form_size(conjunction, MultiMarker) > DNF_LIMIT:
            return min(conjunction, unnormalized, key=lambda x: x.complexity)
        disjunction = self.dnf(conjunction)
        if type(disjunction) is not MarkerUnion:
            return disjunction
        return min(disjunction, conjunction, unnormalized, key=lambda x: x.complexity)

    # -- normal forms ---------------------------------------------------------------------------

    def cnf(self, m: BaseMarker) -> BaseMarker:
        """dep-logic's `utils.cnf` (remembered per equal marker, as its `functools.cache`)."""
        return self._normal(m, True)

    def dnf(self, m: BaseMarker) -> BaseMarker:
        """dep-logic's `utils.dnf`."""
        return self._normal(m, False)

    def _normal(self, m: BaseMarker, conjunctive: bool) -> BaseMarker:
        memo = self._cnf if conjunctive else self._dnf
        known = memo.get(m)
        if known is not None:
            return known
        outer, inner = (MultiMarker, MarkerUnion) if conjunctive else (MarkerUnion, MultiMarker)
        result = m
        if type(m) is inner:  # distribute: one outer term per choice of one term of each part
            parts = [self._normal(x, conjunctive) for x in m.markers]
            choices = [p.markers if type(p) is outer else (p,) for p in parts]
            result = self._build(conjunctive, [self.of(inner, c) for c in product(*choices)])
        elif type(m) is outer:
            result = self._build(conjunctive, [self._normal(x, conjunctive) for x in m.markers])
        memo[m] = result
        return result

    # -- MultiMarker.of / MarkerUnion.of --------------------------------------------------------

    def of(self, cls: type[MultiMarker] | type[MarkerUnion], markers: tuple[BaseMarker, ...]) -> BaseMarker:
        """dep-logic's `cls.of(*markers)`, remembered for the same marker objects (the CNF and
        DNF of a union build the same terms from the same parts over and over)."""
        conjunctive = cls is MultiMarker
        made = self._made[conjunctive]
        key = hash(tuple(map(id, markers)))  # equal keys are checked below: a hash may collide
        known = made.get(key)
        if known is not None and len(known[0]) == len(markers) and all(map(operator.is_, known[0], markers)):
            return known[1]
        result = self._build(conjunctive, markers)
        made[key] = (markers, result)  # the markers kept: no id is reused while remembered
        return result

    def _build(self, conjunctive: bool, markers: Sequence[BaseMarker]) -> BaseMarker:
        """`MultiMarker.of` (conjunctive) or `MarkerUnion.of`, step by step."""
        cls = MultiMarker if conjunctive else MarkerUnion
        new = _flatten(markers, cls)
        old: list[BaseMarker] = []
        while old != new:
            old, new = new, []
            seen: set[BaseMarker] = set()
            merged = False
            for marker in old:
                if marker in seen or (marker.is_any() if conjunctive else marker.is_empty()):
                    continue
                for i, mark in enumerate(new):
                    step = self._pair(conjunctive, mark, marker)
                    if step is _ABSORBED:
                        return EmptyMarker() if conjunctive else AnyMarker()
                    if step is not None:
                        merged = True
                        seen.discard(mark)
                        if type(step) is not cls and step not in seen:
                            new[i] = step  # what flattening the list again would give
                            seen.add(step)
                            break
                        new[i] = step
                        new = _flatten(new, cls)
                        seen = set(new)
                        break
                else:
                    new.append(marker)
                    seen.add(marker)
            if not merged:
                break  # another pass would make the same comparisons with the same results
        if any((m.is_empty() if conjunctive else m.is_any()) for m in new):
            return EmptyMarker() if conjunctive else AnyMarker()
        if not new:
            return AnyMarker() if conjunctive else EmptyMarker()
        return new[0] if len(new) == 1 else _make(cls, new)

    def _pair(self, conjunctive: bool, mark: BaseMarker, marker: BaseMarker) -> BaseMarker | None:
        """What `of` does with a kept term `mark` and the next term `marker`: the term that
        replaces `mark`, `_ABSORBED`, or None (keep both)."""
        pairs = self._pairs[conjunctive]
        key = id(mark) << 64 | id(marker)
        known = pairs.get(key)
        if known is not None:
            return known[2]
        step: BaseMarker | None = None
        if type(mark) in _SINGLE:
            merged = self.and_(mark, marker) if conjunctive else self.or_(mark, marker)
            if merged.is_empty() if conjunctive else merged.is_any():
                step = _ABSORBED
            elif type(merged) in _SINGLE:
                step = merged
        elif conjunctive and type(mark) is MarkerUnion:
            step = self._simplify(True, mark, marker)
        elif not conjunctive and type(mark) is MultiMarker:
            step = self._simplify(False, mark, marker)
        pairs[key] = (mark, marker, step)
        return step

    def _simplify(self, conjunctive: bool, mark: BaseMarker, other: BaseMarker) -> BaseMarker | None:
        """`MarkerUnion.intersect_simplify` (conjunctive) or `MultiMarker.union_simplify`."""
        terms: tuple[BaseMarker, ...] = mark.markers  # type: ignore[attr-defined]
        if other in terms:
            return other
        if type(other) is not type(mark):
            return None
        ours, theirs = set(terms), set(other.markers)  # type: ignore[attr-defined]
        if ours.issubset(theirs):
            return mark
        if theirs.issubset(ours):
            return other
        shared = ours.intersection(theirs)
        if not shared:
            return None
        cls = type(mark)
        mine, others = cls(*(ours - theirs)), cls(*(theirs - ours))
        unique = self.and_(mine, others) if conjunctive else self.or_(mine, others)
        fits = EmptyMarker if conjunctive else AnyMarker
        if type(unique) in _SINGLE or isinstance(unique, fits):
            common = cls(*[m for m in terms if m in shared])
            return self.or_(unique, common) if conjunctive else self.and_(unique, common)
        return None


def form_size(m: BaseMarker, distributed: type) -> int:
    """The terms of a normal form before simplification: distributing an operator of type
    `distributed` multiplies its operands' sizes, the other operator adds them (`MarkerUnion`:
    the clauses of the CNF; `MultiMarker`: the conjunctions of the DNF)."""
    if type(m) is distributed:
        n = 1
        for x in m.markers:  # type: ignore[attr-defined]
            n *= form_size(x, distributed)
        return n
    if type(m) in _COMPOUND:
        return sum(form_size(x, distributed) for x in m.markers)  # type: ignore[attr-defined,misc]
    return 1
