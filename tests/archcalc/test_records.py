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
