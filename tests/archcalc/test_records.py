"""Records: frozen dataclasses whose methods are written once. They must behave as
``@dataclass(frozen=True)`` does wherever archcalc and its users rely on it."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from archcalc.records import Record


class Point(Record):
    x: int
    y: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)


def test_arguments_bind_as_a_dataclass_would() -> None:
    assert (Point(1).x, Point(1).y, Point(1).tags) == (1, 0, [])
    assert Point(1, 2, ["a"]) == Point(x=1, y=2, tags=["a"]) == Point(1, tags=["a"], y=2)
    assert Point(1).tags is not Point(1).tags  # a fresh default per instance
    assert [f.name for f in dataclasses.fields(Point)] == ["x", "y", "tags"]


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((), {}, "needs the argument 'x'"),
    ((1, 2, [], 4), {}, "takes 3 arguments, not 4"),
    ((1,), {"x": 2}, "given twice"),
    ((1,), {"z": 2}, "has no field 'z'"),
])
def test_wrong_arguments_are_type_errors(args: tuple[object, ...], kwargs: dict[str, object],
                                         message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)


def test_records_are_immutable_values() -> None:
    p = Point(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.y
    assert p == Point(1, 2) and p != Point(1, 3)
    assert hash(Point(1, 2, ())) == hash(Point(1, 2, ()))  # type: ignore[arg-type]
    assert (p == (1, 2, [])) is False
    assert repr(p) == "Point(x=1, y=2, tags=[])"


def test_copies_pickles_and_replace_keep_the_value() -> None:
    p = Point(1, 2)
    q = Point(1, 2, ())  # type: ignore[arg-type]
    hash(q)  # a cached hash ...
    for twin in (copy.copy(q), copy.deepcopy(q), pickle.loads(pickle.dumps(q))):
        assert twin == q and "_hash" not in twin.__dict__  # ... stays behind
    assert dataclasses.replace(p, y=5) == Point(1, 5)
    assert dataclasses.asdict(p) == {"x": 1, "y": 2, "tags": []}


def test_post_init_is_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match="no __post_init__"):
        class Bad(Record):
            x: int

            def __post_init__(self) -> None:
                pass


class Span(Record):
    start: int
    end: int = 0
    label: str = ""


@dataclasses.dataclass(frozen=True)
class SpanDataclass:
    start: int
    end: int = 0
    label: str = ""


@pytest.mark.parametrize(("args", "kwargs"), [
    ((1,), {}), ((1, 2), {}), ((1, 2, "a"), {}), ((), {"start": 1}),
    ((), {"label": "b", "start": 1}), ((), {"end": 2, "start": 1, "label": ""}),
    ((1,), {"label": "c"}),
])
def test_trailing_defaults_bind_as_a_dataclass_would(args: tuple[object, ...],
                                                     kwargs: dict[str, object]) -> None:
    """The short cuts for the first fields by position, or some fields by name, with the
    others defaulted (``Node(layer, label, path, loc)``, ``Ops(macs=...)``)."""
    span = Span(*args, **kwargs)
    assert dataclasses.astuple(span) == dataclasses.astuple(SpanDataclass(*args, **kwargs))
    assert sorted(span.__dict__) == ["end", "label", "start"]


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((), {}, "needs the argument 'start'"),
    ((), {"end": 2}, "needs the argument 'start'"),
    ((1, 2, "a", 4), {}, "takes 3 arguments, not 4"),
    ((), {"start": 1, "width": 2}, "has no field 'width'"),
])
def test_trailing_defaults_still_refuse_wrong_arguments(
        args: tuple[object, ...], kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Span(*args, **kwargs)


class Hot(Record):
    start: int
    end: int = 0
    label: str = ""


class HotChild(Hot):
    width: int = 1


def test_a_hot_class_compiles_its_init_and_binds_as_before() -> None:
    """After HOT records a class gets a compiled ``__init__`` for arguments by position or
    by name; what it hands on (a mix, wrong names or counts, a subclass) binds and fails as
    before."""
    from archcalc.records import HOT

    made = [Hot(i, str(i)) for i in range(HOT)]
    assert "__init__" in Hot.__dict__  # compiled
    assert [(h.start, h.end, h.label) for h in made[:2]] == [(0, "0", ""), (1, "1", "")]
    for args, kwargs in [((1,), {}), ((1, 2), {}), ((1, 2, "a"), {}), ((), {"start": 1}),
                         ((1,), {"label": "c"}), ((), {"label": "b", "start": 1})]:
        hot, span = Hot(*args, **kwargs), SpanDataclass(*args, **kwargs)  # type: ignore[arg-type]
        assert dataclasses.astuple(hot) == dataclasses.astuple(span)
        assert sorted(hot.__dict__) == ["end", "label", "start"]
    for args, kwargs, message in [((), {}, "needs the argument 'start'"),
                                  ((), {"end": 2}, "needs the argument 'start'"),
                                  ((), {"start": 1, "size": 2}, "has no field 'size'"),
                                  ((1, 2, "a", 4), {}, "takes 3 arguments, not 4"),
                                  ((1,), {"start": 2}, "given twice"),
                                  ((1,), {"size": 2}, "has no field 'size'")]:
        with pytest.raises(TypeError, match=message):
            Hot(*args, **kwargs)  # type: ignore[arg-type]
    child = HotChild(1, 2, "c", 4)
    assert (child.start, child.end, child.label, child.width) == (1, 2, "c", 4)
    assert HotChild(5).width == 1 and hash(Hot(1)) == hash(Hot(1, 0, ""))
