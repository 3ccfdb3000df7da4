r"""Run a sweep chunk by chunk (resumable), and assemble its dataset."""

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

from .._provenance import CANONICAL_FORMULAS, package_versions
from . import _store
from ._executors import AbstractExecutor, LocalExecutor
from ._spec import Sweep, SweepConfigError
from ._worker import run_chunk

DEFAULT_CHUNK_SIZE = 64


def plan(sweep: Sweep, chunk_size: int, devices: int | str | None = None) -> list[dict]:
    r"""The chunk tasks of `sweep`: each bucket (one rule, K, M) is split into
    $\lceil n / \text{chunk\_size}\rceil$ chunks of equal compiled batch size (the last one
    padded), so a bucket compiles once. Deterministic: the same sweep and chunk size always
    give the same chunks (the basis of resuming)."""
    tasks = []
    config = sweep.config
    for (rule, K, M), members in sweep.buckets():
        n_chunks = math.ceil(len(members) / chunk_size)
        batch = math.ceil(len(members) / n_chunks)
        for start in range(0, len(members), batch):
            part = members[start : start + batch]
            rows = [[index, p["eta"], p["c"], p["noise"], p["seed"]] for index, p in part]
            task = {"config": config, "rule": rule, "K": K, "M": M, "members": rows, "batch": batch}
            tasks.append(task | {"devices": devices})
    return tasks


def _attrs(sweep: Sweep) -> dict:
    versions = package_versions(device=False)  # where it ran is not part of the result
    return {
        "title": "plateaux sweep: order-parameter ODE over a grid of scenarios",
        "Conventions": "CF-1.8",
        "plateaux_format": _store.FORMAT,
        "config": json.dumps(sweep.config, sort_keys=True),
        "config_hash": sweep.hash,
        "versions": json.dumps(versions, sort_keys=True),
        "conventions": json.dumps(CANONICAL_FORMULAS, sort_keys=True),
        "scenario": "classic_start(K, correlated_teacher(M, c), jax.random.key(seed), q_max, overlap_max); "
        "rule sgd = plateaux.OnlineSGD(eta, noise), ngd = plateaux.natural.NaturalGradientSGD(eta, noise)",
        "padding": "Q, R are NaN beyond each scenario's K (and M); phase_* beyond its last phase "
        "(phase_kind = -1)",
    }


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    *,
    executor: AbstractExecutor | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    on_chunk: Callable[[int, int], None] | None = None,
    devices: int | str | None = None,
):
    r"""Run `sweep` into the folder `out` and return its dataset (an `xarray.Dataset`, also
    written to `out/sweep.nc`).

    Scenarios of one rule and shape (K, M) are solved together in one `vmap`
    ([`plateaux.integrate`][] with one $\eta$ per member), in chunks of at most `chunk_size`
    scenarios; each finished chunk is written atomically to `out/chunks/`. Rerunning on the
    same folder skips finished chunks, so an interrupted run resumes, and the dataset is the
    same as an uninterrupted run's.

    **Arguments:**

    - `sweep`: a [`Sweep`][] (e.g. `Sweep.from_toml(path)`).
    - `out`: results folder (created if needed).
    - `executor`: where chunks run (default [`LocalExecutor`][]: this process, in order).
    - `chunk_size`: scenarios per chunk (default 64, or the size the folder was started
      with); bounds memory (a chunk holds `chunk_size x num_saves x (1 + K^2 + K M)` floats
      of output plus the solver state).
    - `progress`: a progress bar on stderr (chunks done, rate, ETA).
    - `overwrite`: discard the results of a previous (different) sweep in `out`.
    - `on_chunk`: called as `on_chunk(done, total)` after each chunk is written.
    - `devices`: shard each chunk's batch over this many local devices (or `"all"`), one
      adaptive loop per device (`shard_map` of `vmap`); `None` (default): one device. An
      execution detail, outside the config hash: results agree to the solver's tolerance but
      not bit for bit, so resume with the same setting for a bit-identical dataset.

    **Raises:** `SweepMismatchError` if `out` holds a sweep of another configuration or chunk
    size (and `overwrite` is false); `SweepConfigError` on a bad `chunk_size` or `out`.
    """
    out = Path(out)
    chunk_size = _store.prepare(out, sweep, chunk_size, overwrite, DEFAULT_CHUNK_SIZE)
    if not (devices is None or devices == "all" or (isinstance(devices, int) and devices >= 1)):
        raise SweepConfigError(f"devices must be None, 'all' or a positive integer; got {devices!r}")
    tasks = plan(sweep, chunk_size, devices)
    todo = [i for i in range(len(tasks)) if not _store.chunk_path(out, i).exists()]
    executor = LocalExecutor() if executor is None else executor
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(tasks),
        initial=len(tasks) - len(todo),
        unit="chunk",
        desc="sweep",
        disable=not progress,
        file=sys.stderr,
    )
    done = len(tasks) - len(todo)
    try:
        for position, arrays in executor.map(run_chunk, [tasks[i] for i in todo]):
            _store.write_chunk(out, todo[position], arrays, sweep.hash)
            done += 1
            bar.update(1)
            if on_chunk is not None:
                on_chunk(done, len(tasks))
    finally:
        bar.close()
    return _assemble(out, sweep, len(tasks))


def _assemble(out: Path, sweep: Sweep, n_chunks: int):
    chunks = [_store.read_chunk(out, i, sweep.hash) for i in range(n_chunks)]
    ds = _store.assemble(sweep, chunks, _attrs(sweep))
    _store.write_dataset(out, ds)
    return ds


def load_sweep(out: str | Path):
    r"""The dataset of a finished sweep in `out` (an `xarray.Dataset`, loaded into memory).

    If the chunks are all there but `sweep.nc` is not (a run killed while assembling), it is
    assembled first. **Raises:** `FileNotFoundError` if `out` is not a sweep folder,
    `RuntimeError` if chunks are missing (rerun the sweep to finish them).
    """
    import xarray as xr

    out = Path(out)
    path = out / _store.DATASET
    if not path.exists():
        manifest = _store.read_manifest(out)
        sweep = Sweep.from_dict(manifest["config"])
        n_chunks = len(plan(sweep, manifest["chunk_size"]))
        missing = [i for i in range(n_chunks) if not _store.chunk_path(out, i).exists()]
        if missing:
            raise RuntimeError(
                f"{out}: {len(missing)} of {n_chunks} chunks not finished; rerun the sweep to complete it"
            )
        return _assemble(out, sweep, n_chunks)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()
