"""Named entries a package offers as choices (retriever kinds, answer modes, pair sources), each
registered once, in one place, and read by everything that offers the choice."""

from __future__ import annotations

from typing import Protocol, TypeVar


class Named(Protocol):
    name: str


T = TypeVar("T", bound=Named)


class Registry(dict[str, T]):
    """Entries by their ``name``, in the order they were registered (the order they are offered).

    A plain dict for reading (``list(registry)``, ``registry[name]``, ``in``); :meth:`register` adds
    and refuses a name twice, :meth:`entry` names the choices when asked for an unknown one."""

    def __init__(self, what: str, error: type[Exception] = ValueError) -> None:
        super().__init__()
        self.what = what  #: what an entry is, for messages ("retriever", "answer mode")
        self.error = error  #: raised for an unknown name

    def register(self, entry: T) -> T:
        if entry.name in self:
            raise ValueError(f"a {self.what} called {entry.name!r} is registered already")
        self[entry.name] = entry
        return entry

    def entry(self, name: str) -> T:
        found = self.get(name)
        if found is None:
            raise self.error(f"unknown {self.what} {name!r}; choose from {', '.join(self)}")
        return found
