"""A column store for the engine's stages: named numpy arrays, one element per row.

Stages read columns as attributes (`c.m_hidden / c.tp`) and add new ones (`c.step_time_s = ...`).
A view over a subset or a repetition of rows (`Columns.take`) gathers each column only when a stage
first reads it, so expanding 30 scenarios into 100,000 candidate plans copies only what is used. A view of a
view reads a column from the nearest store that holds it through the composed row index: one gather per
column, not one per level of views.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl


class Columns:
    # The columns are the instance's __dict__ (also held as _data): a column already read or computed is found
    # by Python's ordinary attribute lookup, and __getattr__ runs only for the first read of a column.
    __slots__ = ("_data", "_base", "_index", "_lineage", "n", "__dict__")
    # Declared for the type checker (set through object.__setattr__: __setattr__ below stores columns).
    _data: dict[str, np.ndarray]
    _base: Columns | _FrameSource | None
    _index: np.ndarray | None
    _lineage: _Lineage | None
    n: int

    def __init__(
        self,
        data: dict[str, np.ndarray],
        n: int,
        base: Columns | _FrameSource | None = None,
        index: np.ndarray | None = None,
    ):
        object.__setattr__(self, "__dict__", data)
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_base", base)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_lineage", None)
        object.__setattr__(self, "n", n)

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> Columns:
        """A store over a polars frame; each column becomes a numpy array when a stage first reads it."""
        return cls({}, frame.height, base=_FrameSource(frame))

    def take(self, index: np.ndarray) -> Columns:
        """Rows `index` of this store (repeats allowed); columns are gathered lazily."""
        index = np.asarray(index)
        if len(index) == self.n and np.array_equal(index, np.arange(self.n)):
            return self
        return Columns({}, len(index), base=self, index=index)

    def __getattr__(self, name: str) -> np.ndarray:
        # Called only for a column not in this store yet (the others are found in __dict__).
        lineage = self._lineage or self._lineage_of(name)
        # Views under this one hold only what they computed or read: the nearest with the column, else the last.
        store, index = lineage[1]
        for data, view_index in lineage[0]:
            if name in data:
                value, index = data[name], view_index
                break
        else:
            value = getattr(store, name)
        if index is not None:
            value = value[index]
        self._data[name] = value
        return value

    def _lineage_of(self, name: str) -> _Lineage:
        """The views under this one, nearest first, as (their columns, the index of this view's rows into them),
        and the last store with its index (the view indices composed once, on the first read that misses)."""
        base, index = self._base, self._index
        if base is None:
            raise AttributeError(f"no column {name!r}")
        views: list[tuple[dict[str, np.ndarray], np.ndarray | None]] = []
        while isinstance(base, Columns) and base._base is not None and base._index is not None:
            views.append((base._data, index))
            index = base._index if index is None else base._index[index]
            base = base._base
        lineage = (views, (base, index))
        object.__setattr__(self, "_lineage", lineage)
        return lineage

    def __setattr__(self, name: str, value) -> None:
        if not isinstance(value, np.ndarray) or value.ndim == 0:
            value = np.full(self.n, value)
        self._data[name] = value

    def __contains__(self, name: str) -> bool:
        return name in self._data or (self._base is not None and name in self._base)

    def names(self) -> Iterator[str]:
        yield from self._data
        if self._base is not None:
            yield from (k for k in self._base.names() if k not in self._data)

    def get(self, name: str, default=None):
        return getattr(self, name) if name in self else default


class _FrameSource:
    """Read-only column access to a polars frame (numeric columns as float64 numpy arrays: zero-copy for
    the Float64 columns `resolve` produces, one conversion for others; text columns as objects)."""

    def __init__(self, frame: pl.DataFrame):
        self._frame = frame
        # The names only (a frame's full schema costs ~0.1 ms to build for the few columns a stage reads).
        self._columns = frame.columns
        self._names = frozenset(self._columns)

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("_") or name not in self._names:
            raise AttributeError(f"no column {name!r}")
        series = self._frame.get_column(name)
        if series.dtype.is_numeric():
            return series.to_numpy().astype(np.float64, copy=False)
        return series.to_numpy().astype(object)

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def names(self):
        return iter(self._columns)


# A view's stores below it: the views (their columns, this view's rows in them), then the last store and rows.
_Lineage = tuple[
    list[tuple[dict[str, np.ndarray], np.ndarray | None]], tuple[Columns | _FrameSource, np.ndarray | None]
]
