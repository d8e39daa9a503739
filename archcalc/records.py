"""Immutable records: frozen dataclasses whose methods are written once, here.

``@dataclass(frozen=True)`` compiles six functions per class from generated source text
(``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``),
about 0.5-1 ms each class on this machine: twenty records cost ``archcalc vgg19 --table``
a sixth of its start-up. A :class:`Record` subclass is still a dataclass (``fields``,
``replace``, ``asdict`` and type checkers see one), but it inherits those methods instead of
generating them.
"""

from __future__ import annotations

from dataclasses import MISSING, FrozenInstanceError, dataclass, fields
from typing import Any, ClassVar, dataclass_transform


@dataclass_transform(eq_default=True, frozen_default=True)
class Record:
    """Base of a frozen record: ``class Params(Record): weights: int = 0``.

    Fields take defaults and ``field(default_factory=...)``; equality compares the field
    values of records of the same class; the hash is computed once per instance (records
    are cache keys) and left out of copies and pickles (string hashes differ between
    processes)."""

    # Per subclass: field names in order, the same as a set, defaults, default factories.
    __record__: ClassVar[tuple[tuple[str, ...], frozenset[str], dict[str, Any],
                               dict[str, Any]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__post_init__" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: a Record has no __post_init__; compute "
                            "derived values in a property or a constructor function")
        dataclass(init=False, repr=False, eq=False)(cls)  # fields only: generates no code
        found = fields(cls)  # type: ignore[arg-type]
        names = tuple(f.name for f in found)
        cls.__record__ = (
            names,
            frozenset(names),
            {f.name: f.default for f in found if f.default is not MISSING},
            {f.name: f.default_factory for f in found if f.default_factory is not MISSING},
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names, known, defaults, factories = self.__record__
        if not kwargs and len(args) == len(names):  # every field, in order
            self.__dict__.update(zip(names, args, strict=True))
            return
        if not args and len(kwargs) == len(names) and known.issuperset(kwargs):  # by name
            self.__dict__.update(kwargs)
            return
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} arguments, "
                            f"not {len(args)}")
        values = dict(defaults)
        values.update(zip(names, args, strict=False))
        if kwargs:
            if not known.issuperset(kwargs):
                raise TypeError(f"{type(self).__name__} has no field "
                                f"{min(kwargs.keys() - known)!r}")
            if any(name in kwargs for name in names[:len(args)]):
                raise TypeError(f"{type(self).__name__}: an argument given twice")
            values.update(kwargs)
        for name, factory in factories.items():
            if name not in values:
                values[name] = factory()
        if len(values) < len(names):
            missing = [name for name in names if name not in values]
            raise TypeError(f"{type(self).__name__} needs the argument {missing[0]!r}")
        self.__dict__.update(values)

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r} of an immutable "
                                  f"{type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r} of an immutable "
                                  f"{type(self).__name__}")

    def _values(self) -> tuple[object, ...]:
        state = self.__dict__
        return tuple(state[name] for name in self.__record__[0])

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        found: int | None = self.__dict__.get("_hash")
        if found is None:
            found = self.__dict__["_hash"] = hash((type(self), self._values()))
        return found

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={v!r}" for n, v in zip(self.__record__[0], self._values(),
                                                        strict=True))
        return f"{type(self).__name__}({args})"
