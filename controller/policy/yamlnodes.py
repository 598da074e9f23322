"""Reading YAML with the line and column of every value, so each mistake points at where it was made.

PyYAML's composer keeps a mark on every node; reading the node tree (instead of the loaded Python
objects) keeps them, and also sidesteps YAML 1.1's surprises: `16:00` stays "16:00" (not 960 minutes)
and `no` stays "no" where a name is expected. Booleans and numbers are read where they are asked for.
"""

from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

import yaml

T = TypeVar("T")
EnumT = TypeVar("EnumT", bound=enum.Enum)

_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


@dataclass(frozen=True)
class Problem:
    """One mistake, printed as ``file:line:column: where: message`` (line and column from 1)."""

    path: str
    line: int
    column: int
    where: str
    message: str

    def __str__(self) -> str:
        location = f"{self.path}:{self.line}:{self.column}" if self.line else self.path
        return f"{location}: {self.where}: {self.message}" if self.where else f"{location}: {self.message}"


class Invalid(Exception):
    """One bad value; loaders collect these into a PolicyError."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class Problems:
    """Collects problems so one run reports every independent mistake, not just the first.

    ``notes`` are things worth saying that are not mistakes, e.g. events an .ics import left out.
    """

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.notes: list[str] = []

    def attempt(self, read: Callable[[], T]) -> T | None:
        try:
            return read()
        except Invalid as exc:
            self.items.append(exc.problem)
            return None

    def add(self, problem: Problem) -> None:
        self.items.append(problem)


@dataclass(frozen=True)
class Node:
    """A YAML node with the file it came from and its dotted path, e.g. ``school_hours.monday``."""

    raw: yaml.Node
    path: str
    where: str = ""

    @property
    def line(self) -> int:
        return self.raw.start_mark.line + 1

    @property
    def column(self) -> int:
        return self.raw.start_mark.column + 1

    @property
    def source(self) -> str:
        return f"{self.path}:{self.line}"

    def problem(self, message: str) -> Problem:
        return Problem(self.path, self.line, self.column, self.where, message)

    def invalid(self, message: str) -> Invalid:
        return Invalid(self.problem(message))

    def child(self, raw: yaml.Node, name: str | int) -> Node:
        if isinstance(name, int):
            return Node(raw, self.path, f"{self.where}[{name}]")
        return Node(raw, self.path, f"{self.where}.{name}" if self.where else name)

    # --- shapes -------------------------------------------------------------------------------------

    @property
    def is_null(self) -> bool:
        return isinstance(self.raw, yaml.ScalarNode) and self.raw.tag == "tag:yaml.org,2002:null"

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.raw, yaml.MappingNode)

    @property
    def is_sequence(self) -> bool:
        return isinstance(self.raw, yaml.SequenceNode)

    def mapping(self, allowed: Sequence[str], required: Sequence[str] = ()) -> dict[str, Node]:
        """The keys of a mapping; unknown (with a suggestion), repeated and missing keys are mistakes."""
        if not self.is_mapping:
            raise self.invalid(f"expected a mapping with keys such as {', '.join(list(allowed)[:4])}")
        fields: dict[str, Node] = {}
        for key_raw, value_raw in self.raw.value:
            key = Node(key_raw, self.path, self.where)
            if not isinstance(key_raw, yaml.ScalarNode):
                raise key.invalid("a key must be a plain word")
            name = key_raw.value
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; expected one of {', '.join(allowed)}"
                raise self.child(key_raw, name).invalid(f"unknown key {name!r}{hint}")
            if name in fields:
                raise self.child(key_raw, name).invalid(f"{name!r} is given twice (first on line {fields[name].line})")
            fields[name] = self.child(value_raw, name)
        missing = [name for name in required if name not in fields]
        if missing:
            raise self.invalid(f"missing required key {missing[0]!r}")
        return fields

    def items(self) -> Iterator[Node]:
        if not self.is_sequence:
            raise self.invalid("expected a list, e.g. [a, b] or lines starting with '- '")
        for index, raw in enumerate(self.raw.value):
            yield self.child(raw, index)

    # --- scalars ------------------------------------------------------------------------------------

    def scalar(self) -> str:
        if not isinstance(self.raw, yaml.ScalarNode) or self.is_null:
            raise self.invalid("expected a single value")
        return self.raw.value

    def text(self) -> str:
        value = self.scalar().strip()
        if not value:
            raise self.invalid("must not be empty")
        return value

    def texts(self) -> tuple[str, ...]:
        return tuple(item.text() for item in self.items())

    def integer(self, low: int, high: int) -> int:
        value = self.scalar()
        if not re.fullmatch(r"[-+]?\d+", value.replace("_", "")):
            raise self.invalid(f"{value!r} is not a whole number")
        number = int(value.replace("_", ""))
        if not low <= number <= high:
            raise self.invalid(f"{number} is out of range ({low} to {high})")
        return number

    def number(self, low: float, high: float) -> float:
        value = self.scalar()
        try:
            number = float(value)
        except ValueError:
            raise self.invalid(f"{value!r} is not a number") from None
        if not low <= number <= high:
            raise self.invalid(f"{value} is out of range ({low:g} to {high:g})")
        return number

    def boolean(self) -> bool:
        value = self.scalar().casefold()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise self.invalid(f"{self.scalar()!r} is not true or false")

    def choice(self, choices: type[EnumT]) -> EnumT:
        value = self.scalar()
        try:
            return choices(value)
        except ValueError:
            names = ", ".join(str(c.value) for c in choices)
            raise self.invalid(f"{value!r} is not one of {names}") from None

    def day(self) -> date:
        value = self.scalar()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise self.invalid(f"{value!r} is not a date (YYYY-MM-DD)")


def compose(text: str, path: str) -> list[Node]:
    """Every document in ``text`` as a node; a YAML syntax error becomes a Problem at its line."""
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        raise Invalid(Problem(path, mark.line + 1 if mark else 0, mark.column + 1 if mark else 0, "",
                              f"not valid YAML: {message}")) from None
    return [Node(document, path) for document in documents if document is not None]
