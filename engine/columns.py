"""A column store for the engine's stages: named numpy arrays, one element per row.

Stages read columns as attributes (`c.m_hidden / c.tp`) and add new ones (`c.step_time_s = ...`).
A view over a subset or a repetition of rows (`Columns.take`) gathers each column only when a stage
first reads it, so expanding 30 scenarios into 100,000 candidate plans copies only what is used.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl


class Columns:
    __slots__ = ("_data", "_base", "_index", "n")
    # Declared for the type checker (set through object.__setattr__: __setattr__ below stores columns).
    _data: dict[str, np.ndarray]
    _base: Columns | _FrameSource | None
    _index: np.ndarray | None
    n: int

    def __init__(
        self,
        data: dict[str, np.ndarray],
        n: int,
        base: Columns | _FrameSource | None = None,
        index: np.ndarray | None = None,
    ):
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_base", base)
        object.__setattr__(self, "_index", index)
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
        data = self._data
        if name in data:
            return data[name]
        if self._base is not None:
            value = getattr(self._base, name)
            if self._index is not None:
                value = value[self._index]
            data[name] = value
            return value
        raise AttributeError(f"no column {name!r}")

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
        self._schema = frame.schema

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("_") or name not in self._schema:
            raise AttributeError(f"no column {name!r}")
        series = self._frame.get_column(name)
        if self._schema[name].is_numeric():
            return series.to_numpy().astype(np.float64, copy=False)
        return series.to_numpy().astype(object)

    def __contains__(self, name: str) -> bool:
        return name in self._schema

    def names(self):
        return iter(self._schema)
