r"""Executors: where the chunks of a sweep run (this process, or the workers of a cluster).

An executor maps a picklable top-level function over a list of picklable items and yields
`(index, result)` pairs **as each one completes**, so a caller can write every finished
chunk to disk at once (and resume later) whatever the order of completion.

- [`LocalExecutor`][]: in this process, in order.
- [`DaskExecutor`][]: the workers of a [Dask distributed](https://distributed.dask.org)
  cluster, e.g. one long-lived worker per GPU (`dask worker ADDRESS --nthreads 1
  --resources GPU=1`, or `dask-cuda-worker`), which keeps its JAX compilation cache warm
  from one chunk to the next. Dask is imported only when a `DaskExecutor` is built: the
  engine never imports it.

A chunk that raises stops the map with a [`ChunkError`][] naming the chunk (its index and
item), chained to the original exception.
"""

import abc
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any


class ChunkError(RuntimeError):
    """A chunk raised on its executor. `index` and `item` say which one; the original
    exception is the `__cause__` (for Dask, re-raised from the worker with its traceback)."""

    def __init__(self, index: int, item: Any, fn: Callable, error: BaseException):
        self.index = index
        self.item = item
        text = repr(item)
        if len(text) > 200:
            text = text[:200] + "..."
        name = getattr(fn, "__qualname__", repr(fn))
        super().__init__(f"chunk {index} ({name}({text})) failed: {type(error).__name__}: {error}")


class AbstractExecutor(abc.ABC):
    """Runs `fn` over `items`; see the module docstring for the contract."""

    @abc.abstractmethod
    def map(self, fn: Callable, items: Sequence) -> Iterator[tuple[int, Any]]:
        """Yield `(i, fn(items[i]))` for every `i`, each as soon as it is done (any order).

        **Raises:** [`ChunkError`][] for the first chunk found to have raised; chunks not yet
        started are cancelled.
        """

    def close(self) -> None:
        """Release what the executor started (nothing for a local one)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LocalExecutor(AbstractExecutor):
    """Runs every item in this process, in order (the default; compiled functions are reused
    from one chunk to the next, as on a long-lived worker)."""

    def map(self, fn, items):
        for i, item in enumerate(items):
            try:
                result = fn(item)
            except Exception as err:
                raise ChunkError(i, item, fn, err) from err
            yield i, result


class DaskExecutor(AbstractExecutor):
    r"""Sends each item to a worker of a Dask distributed cluster and yields results as they
    complete (`distributed.as_completed`).

    **Arguments:**

    - `address`: the scheduler's address (`"tcp://host:8786"`), or `None` with `client`.
    - `client`: an existing `distributed.Client` (not closed by [`close`][]).
    - `resources`: per-task worker resources, e.g. `{"GPU": 1}` so that each task runs on a
      worker started with `--resources GPU=1`, one task at a time per GPU.
    - `n_workers`: with neither `address` nor `client`, start a `LocalCluster` of this many
      single-threaded worker processes (closed by [`close`][]).

    A task's function must be importable on the workers (a module function of an installed
    package) or picklable by value (`cloudpickle.register_pickle_by_value(module)`).

    **Raises:** `ImportError` with the install command if Dask is missing; `ValueError`
    for an address and a client at once.
    """

    def __init__(
        self, address: str | None = None, *, client=None, resources: dict | None = None, n_workers=None
    ):
        try:
            import distributed
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                "DaskExecutor needs Dask distributed: pip install 'plateaux[distributed]' "
                "(or pip install 'dask[distributed]')"
            ) from err
        if address is not None and client is not None:
            raise ValueError(f"pass an address or a client, not both; got address={address!r} and a client")
        self._cluster = None
        self._own_client = client is None
        if client is None:
            if address is None:
                n = (os.cpu_count() or 1) if n_workers is None else int(n_workers)
                if n < 1:
                    raise ValueError(f"n_workers must be >= 1; got {n_workers}")
                self._cluster = distributed.LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
                )
                address = self._cluster
            client = distributed.Client(address)
        self.client = client
        self.resources = resources

    def map(self, fn, items):
        """Submit every item now (the workers start at once) and return the iterator of
        `(index, result)` in order of completion; see [`AbstractExecutor.map`][]."""
        items = list(items)
        futures = self.client.map(fn, items, pure=False, resources=self.resources)
        return self._as_completed(fn, items, futures)

    def _as_completed(self, fn, items, futures):
        import distributed

        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for future in distributed.as_completed(futures):
                i = index[future.key]
                try:
                    result = future.result()
                except Exception as err:
                    raise ChunkError(i, items[i], fn, err) from err
                future.release()
                yield i, result
        finally:  # an error, or the caller stopped early: cancel what is still queued
            pending = [f for f in futures if not f.done()]
            if pending:
                self.client.cancel(pending)

    def close(self):
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
