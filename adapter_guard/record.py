"""Plain value classes for the lint path, without ``dataclasses``.

Importing ``dataclasses`` (it imports ``inspect``, ``ast``, ``dis`` and
``tokenize``) and building each dataclass (it generates and execs code) took
more of a one-adapter lint's start-up than the lint itself. The classes on the
plain path declare ``__slots__`` and an explicit ``__init__`` instead, and get
from these bases what a dataclass would add: a repr and comparison by value,
field by field in declaration order.
"""

from __future__ import annotations


class Record:
    """A value: compared and hashed by its fields, like a frozen dataclass.

    The fields are the class's ``__slots__``, or ``_fields`` where some slots are
    private state (a cache) that neither the repr nor the comparison shows. A
    record's fields are not reassigned after ``__init__`` (by convention: a
    ``__setattr__`` guard would slow every construction).
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "_fields" not in cls.__dict__:
            cls._fields = tuple(cls.__dict__.get("__slots__", ()))

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self._fields)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({fields})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())


class MutableRecord(Record):
    """A record whose fields may change: compared by value, and so not hashable
    (like a dataclass that is not frozen)."""

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]


def replace(record: Record, **changes):
    """A copy of ``record`` with some fields changed (``dataclasses.replace``)."""
    values = {name: getattr(record, name) for name in record._fields}
    values.update(changes)
    return type(record)(**values)
