r"""The results folder of a sweep: manifest, atomically written chunks, the assembled dataset.

```
DIR/manifest.json        format, config (canonical), config hash, chunk plan
DIR/chunks/chunk-00007.npz   one finished chunk (NumPy arrays, no pickles)
DIR/sweep.nc             the assembled dataset (NetCDF4/HDF5, via xarray + h5netcdf)
```

Every file is written to a temporary name in the same folder and moved into place with
`os.replace` (atomic on POSIX and Windows), so a killed run leaves either a complete file or
none; leftover `*.tmp*` files are ignored and overwritten.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ._spec import AXES, Sweep, SweepConfigError
from ._worker import NO_PHASE, PHASE_KINDS

FORMAT = "plateaux-sweep/1"
DATASET = "sweep.nc"


class SweepMismatchError(SweepConfigError):
    """The results folder holds a sweep of another configuration (or chunking)."""


def _atomic_write(path: Path, write) -> None:
    """Call `write(file_object)` on a temporary file next to `path`, then rename it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def chunk_path(out: Path, chunk: int) -> Path:
    return out / "chunks" / f"chunk-{chunk:05d}.npz"


def write_chunk(out: Path, chunk: int, arrays: dict, config_hash: str) -> None:
    arrays = arrays | {"config_hash": np.asarray(config_hash)}
    _atomic_write(chunk_path(out, chunk), lambda f: np.savez(f, **arrays))


def read_chunk(out: Path, chunk: int, config_hash: str) -> dict:
    with np.load(chunk_path(out, chunk), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    if str(arrays.pop("config_hash")) != config_hash:
        raise SweepMismatchError(f"{chunk_path(out, chunk)} belongs to another sweep configuration")
    return arrays


def prepare(out: Path, sweep: Sweep, chunk_size: int | None, overwrite: bool, default_chunk_size: int) -> int:
    """Create or check `out`; returns the chunk size to use.

    **Raises:** `SweepMismatchError` if `out` holds another configuration or chunk size
    (unless `overwrite`, which deletes the previous sweep's files).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SweepConfigError(f"--out {out} exists and is not a folder")
    manifest_path = out / "manifest.json"
    if overwrite:
        manifest_path.unlink(missing_ok=True)
        (out / DATASET).unlink(missing_ok=True)
        shutil.rmtree(out / "chunks", ignore_errors=True)
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("config_hash") != sweep.hash:
            raise SweepMismatchError(
                f"{out} holds a sweep of another configuration (config hash {manifest.get('config_hash')}, "
                f"this one {sweep.hash}); refusing to mix results. Use a new folder, or --overwrite "
                "(overwrite=True) to discard the old results"
            )
        if chunk_size is not None and chunk_size != manifest["chunk_size"]:
            raise SweepMismatchError(
                f"{out} was started with chunk size {manifest['chunk_size']}, not {chunk_size}; resume "
                "with the same chunk size (or none), or --overwrite to restart"
            )
        return int(manifest["chunk_size"])
    chunk_size = default_chunk_size if chunk_size is None else chunk_size
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise SweepConfigError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    (out / "chunks").mkdir(parents=True, exist_ok=True)
    manifest = {"format": FORMAT, "config_hash": sweep.hash, "config": sweep.config, "chunk_size": chunk_size}
    _atomic_write(manifest_path, lambda f: f.write(json.dumps(manifest, indent=2).encode()))
    return int(chunk_size)


def read_manifest(out: Path) -> dict:
    path = Path(out) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{out} is not a sweep folder (no manifest.json)")
    return json.loads(path.read_text())


_PER_SCENARIO = {
    "eg": ("alpha",),
    "Q": ("alpha", "k", "l"),
    "R": ("alpha", "k", "n"),
    "t_stop": (),
    "status": (),
    "num_steps": (),
    "eg_final": (),
    "plateau_height": (),
    "plateau_entry": (),
    "plateau_exit": (),
    "plateau_duration": (),
    "quasi_plateau_duration": (),
    "phase_kind": ("phase",),
    "phase_entry": ("phase",),
    "phase_exit": ("phase",),
    "phase_eg_exit": ("phase",),
    "phase_relative_escape": ("phase",),
}
_PER_POINT = ("sym_eg", "sym_escape_rate", "sym_relative_escape", "sym_unstable", "sym_converged")
_ATTRS = {
    "eg": "generalization error eps_g(alpha); NaN after t_stop if status is diverged/max_steps",
    "Q": "student-student overlaps Q(alpha), NaN-padded beyond K",
    "R": "student-teacher overlaps R(alpha), NaN-padded beyond K, M",
    "t_stop": "alpha where the solve ended (horizon, convergence, divergence)",
    "num_steps": "solver steps",
    "eg_final": "eps_g at the last reached save",
    "plateau_height": "plateau height (analysis.find_plateau); NaN: no plateau",
    "plateau_entry": "plateau entry alpha (analysis.find_plateau)",
    "plateau_exit": "plateau exit alpha (analysis.find_plateau); NaN: none or not left",
    "plateau_duration": "total alpha spent in phases classified 'plateau' (analysis.segment)",
    "quasi_plateau_duration": "total alpha spent in 'quasi-plateau' phases (analysis.segment)",
    "phase_entry": "phase entry alpha (analysis.segment); NaN beyond the last phase",
    "phase_exit": "phase exit alpha",
    "phase_eg_exit": "eps_g at the phase's exit",
    "phase_relative_escape": "lambda_+ / max|Re lambda| at the phase's organising fixed point",
    "sym_eg": "eps_g at the symmetric fixed point (plateau saddle); NaN: not found",
    "sym_escape_rate": "largest positive eigenvalue real part lambda_+ at the symmetric fixed point",
    "sym_relative_escape": "lambda_+ / max|Re lambda| at the symmetric fixed point",
    "sym_unstable": "number of unstable directions at the symmetric fixed point (-1: not found)",
    "sym_converged": "whether the symmetric fixed point was found (1) or not (0)",
}


def assemble(sweep: Sweep, chunks: list[dict], attrs: dict):
    """Place every chunk's members into the full grid and build the xarray Dataset."""
    import xarray as xr

    shape = sweep.shape
    K_max, M_max = max(sweep.grid["K"]), max(sweep.grid["M"])
    S = len(sweep.save_times())
    width = max((c["phase_kind"].shape[1] for c in chunks if "phase_kind" in c), default=0)
    extra = {"alpha": S, "k": K_max, "l": K_max, "n": M_max, "phase": width}
    names = [v for v in _PER_SCENARIO if v in chunks[0]]
    full = {}
    for name in names:
        dims = _PER_SCENARIO[name]
        dtype = chunks[0][name].dtype
        fill = NO_PHASE if name == "phase_kind" else (0 if dtype.kind in "iub" else np.nan)
        full[name] = np.full((sweep.size, *(extra[d] for d in dims)), fill, dtype=dtype)
    for chunk in chunks:
        for name in names:
            value = chunk[name]
            target = full[name][chunk["index"]]
            target[(slice(None), *(slice(0, s) for s in value.shape[1:]))] = value
            full[name][chunk["index"]] = target
    data_vars = {}
    for name in names:
        array = full[name].reshape(shape + full[name].shape[1:])
        data_vars[name] = (AXES + _PER_SCENARIO[name], array, _var_attrs(name))
    if "sym_eg" in chunks[0]:
        # Fixed points do not depend on the seed: one value per (rule, K, M, eta, c, noise).
        for name in _PER_POINT:
            flat = np.concatenate([c[name] for c in chunks])
            order = np.concatenate([c["index"] for c in chunks])
            values = np.empty(sweep.size, dtype=flat.dtype)
            values[order] = flat
            array = values.reshape(shape)[..., 0]
            if array.dtype == bool:
                array = array.astype(np.int8)
            data_vars[name] = (AXES[:-1], array, _var_attrs(name))
    coords = {a: np.asarray(sweep.grid[a]) for a in AXES}
    coords["alpha"] = ("alpha", sweep.save_times(), {"long_name": "alpha = examples / N"})
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _var_attrs(name: str) -> dict:
    from .._trajectory import Status

    if name == "status":
        return {
            "long_name": "how the integration ended (plateaux.Status)",
            "flag_values": np.array([s.value for s in Status], dtype=np.int8),
            "flag_meanings": " ".join(s.name.lower() for s in Status),
        }
    if name == "phase_kind":
        return {
            "long_name": "phase label (analysis.segment), -1 beyond the last phase",
            "flag_values": np.arange(len(PHASE_KINDS), dtype=np.int8),
            "flag_meanings": " ".join(k.replace(" ", "_") for k in PHASE_KINDS),
        }
    return {"long_name": _ATTRS[name]}


def write_dataset(out: Path, ds) -> Path:
    """Write the dataset atomically to `out/sweep.nc` (NetCDF4 via h5netcdf, compressed)."""
    path = Path(out) / DATASET
    encoding = {name: {"zlib": True, "complevel": 4} for name in ds.data_vars}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
