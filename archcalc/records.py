"""Immutable records: frozen dataclasses whose methods are written once, here.

``@dataclass(frozen=True)`` compiles six functions per class from generated source text
(``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``),
about 0.5-1 ms each class on this machine: twenty records cost ``archcalc vgg19 --table``
a sixth of its start-up. A :class:`Record` subclass is still a dataclass (``fields``,
``replace``, ``asdict`` and type checkers see one), but it inherits those methods instead of
generating them.

Binding arguments in shared code (a loop over any class's fields) costs about three times
what a class's own generated ``__init__`` costs, and an analysis makes hundreds of a few
records (rows, nodes, locations). So a class gets its own ``__init__``, compiled as
dataclasses would but only for arguments all by position or all by name, once it has made
:data:`HOT` records: the few hot classes pay the compiler (~0.1 ms), the many cold ones do
not.
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
    # Per subclass: for each number of arguments that binds by position alone (every field,
    # or the first ones with plain defaults, no factory, for the rest), the values of the
    # rest: ``Node(layer, label, path, loc)`` binds without the general path's dictionaries.
    __record_fill__: ClassVar[dict[int, tuple[Any, ...]]]

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
        cls.__record_fill__ = {len(names): ()}
        for i in range(len(found) - 1, -1, -1):
            if found[i].default is MISSING:
                break
            cls.__record_fill__[i] = tuple(f.default for f in found[i:])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _bind(self, args, kwargs)
        cls = type(self)
        made = _MADE[cls] = _MADE.get(cls, 0) + 1
        if made == HOT and "__init__" not in cls.__dict__ and cls.__record__[0]:
            setattr(cls, "__init__", _compiled_init(cls))  # noqa: B010 (mypy: a method)

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Set the fields from the arguments as a dataclass's ``__init__`` binds them."""
        names, known, defaults, factories = self.__record__
        if not kwargs:
            fill = self.__record_fill__.get(len(args))
            if fill is not None:  # by position; the rest (if any) takes its defaults
                self.__dict__.update(zip(names, args + fill, strict=True))
                return
        if not args and known.issuperset(kwargs):  # by name
            if len(kwargs) == len(names):
                self.__dict__.update(kwargs)
                return
            if not factories:  # the others take their defaults, if they all have one
                values = defaults | kwargs
                if len(values) == len(names):
                    self.__dict__.update(values)
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
        return tuple(map(self.__dict__.__getitem__, self.__record__[0]))

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


_bind = Record._bind
HOT = 32  # records of a class made before the class gets its own __init__
_MADE: dict[type[Record], int] = {}


def _compiled_init(cls: type[Record]) -> Any:
    """``cls.__init__`` for arguments by position (all the fields, or the first ones and
    the defaults of the rest) or, without default factories, by name (``Ops(macs=...)``),
    which it stores without a loop; anything else (a mix, unknown or missing names, wrong
    counts, a subclass's record) it hands to :meth:`Record._bind`, so errors read the same."""
    names, known, defaults, factories = cls.__record__
    local = [f"_{i}" for i in range(len(names))]
    by_position = "".join(f"            state[{name!r}] = {var}\n"
                          for name, var in zip(names, local, strict=True))
    by_name = "".join(
        f"        state[{name!r}] = kwargs.get({name!r}, default_{i})\n"
        if name in defaults else f"        state[{name!r}] = kwargs[{name!r}]\n"
        for i, name in enumerate(names))
    source = (
        "def __init__(self, *args, **kwargs):\n"
        "    if type(self) is not cls:\n"
        "        return bind(self, args, kwargs)\n"
        "    if not kwargs:\n"
        "        fill = fills.get(len(args))\n"
        "        if fill is not None:\n"
        f"            {', '.join(local)}, = args + fill\n"
        "            state = self.__dict__\n"
        f"{by_position}"
        "            return\n"
        + ("" if factories else
           "    elif not args and kwargs.keys() <= known and required <= kwargs.keys():\n"
           "        state = self.__dict__\n"
           f"{by_name}"
           "        return\n")
        + "    bind(self, args, kwargs)\n")
    scope: dict[str, Any] = {"cls": cls, "fills": cls.__record_fill__, "bind": _bind,
                             "known": known, "required": known - defaults.keys()}
    scope.update((f"default_{i}", defaults[name]) for i, name in enumerate(names)
                 if name in defaults)
    exec(compile(source, f"<record {cls.__qualname__}.__init__>", "exec"), scope)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init
