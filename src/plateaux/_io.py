r"""Plain-text import and export of order parameters and weights (round trips with other codes).

Two layouts of one directory, one file per quantity, numbers written with `"%.17g"` (17
significant digits: every float64 reads back bit for bit):

| quantity | `"plateaux"` layout | `"nn2pp"` layout (Goldt et al.'s nn2pp, `PREFIX`) |
|---|---|---|
| $Q$ (K x K) | `Q.txt` | `PREFIX_Q0.dat` |
| $R$ (K x M) | `R.txt` | `PREFIX_R0.dat` |
| $T$ (M x M) | `T.txt` | `PREFIX_T0.dat` |
| $v$ (K) | `v.txt` | `PREFIX_v0.dat` |
| $w$ (M) | `w.txt` | `PREFIX_A0.dat` |
| $J$ (K x N), optional | `J.txt` | `PREFIX_student_w.dat` |
| $B$ (M x N), optional | `B.txt` | `PREFIX_teacher_w.dat` (+ `PREFIX_teacher_v.dat`: $w$) |

Matrices are one row per line, vectors one value per line; the plateaux layout separates
numbers by spaces, the nn2pp layout by commas (Armadillo's `csv_ascii`, which is what nn2pp's
simulator writes with `--store` and its ODE integrator reads with `--prefix PREFIX`; its
`--teacher PREFIX_teacher` reads the teacher weights). Readers accept either separator, `#`
comment lines, and vectors written as a row. nn2pp is in the canonical convention (its
`--normalise` / `--meanfield` put $1/K$, $1/\sqrt K$ into $v$ and $A$), so its files need no
conversion. Optional side files: `convention.json` (the [`plateaux.Convention`][] the $v$, $w$
values are written in; absent means canonical) and `meta.json` (where the state came from).
"""

import json
import re
from pathlib import Path

import numpy as np

from ._conventions import Convention
from ._order_params import _SYMMETRY_RTOL, OrderParams, check_order_params

_FORMAT = "%.17g"
_LAYOUTS = ("plateaux", "nn2pp")
_SEPARATORS = re.compile(r"[,\s]+")
# Relative tolerance when weights and overlaps are saved together: J J^T / N recomputed from the
# written weights agrees with a Q computed the same way to round-off (~1e-15); 1e-10 leaves room
# for overlaps computed by another code in a different summation order.
_WEIGHTS_RTOL = 1e-10


def _names(layout: str, prefix: str | None) -> dict:
    if layout == "plateaux":
        return {k: f"{k}.txt" for k in ("Q", "R", "T", "v", "w", "J", "B")}
    if layout == "nn2pp":
        if not prefix:
            raise ValueError("the nn2pp layout needs a file prefix (prefix='run')")
        if "/" in prefix or "\\" in prefix or prefix in (".", ".."):
            raise ValueError(f"the file prefix must be a plain name, not a path; got prefix={prefix!r}")
        return {
            "Q": f"{prefix}_Q0.dat",
            "R": f"{prefix}_R0.dat",
            "T": f"{prefix}_T0.dat",
            "v": f"{prefix}_v0.dat",
            "w": f"{prefix}_A0.dat",
            "J": f"{prefix}_student_w.dat",
            "B": f"{prefix}_teacher_w.dat",
            "B_v": f"{prefix}_teacher_v.dat",
        }
    raise ValueError(f"unknown layout {layout!r}; use one of {list(_LAYOUTS)}")


def _write(path: Path, array, delimiter: str) -> None:
    array = np.asarray(array, dtype=float)
    np.savetxt(path, array.reshape(-1, 1) if array.ndim == 1 else array, fmt=_FORMAT, delimiter=delimiter)


def _unbatched(params: OrderParams) -> None:
    if params.R.ndim != 2:
        raise ValueError(
            f"save one state at a time: params has batch/time axes {params.R.shape[:-2]} "
            "(use plateaux.save_order_params to pick a time and batch member)"
        )


def _weights_arrays(weights):
    """`(J, B)` from a `(student, teacher)` pair of SoftCommittee or of arrays."""
    if not (isinstance(weights, (tuple, list)) and len(weights) == 2):
        raise ValueError(
            "weights must be a pair (student, teacher) of SoftCommittee or of (K, N), (M, N) arrays"
        )
    J, B = (np.asarray(getattr(x, "weights", x), dtype=float) for x in weights)
    return J, B


def save_text(
    directory,
    params: OrderParams,
    weights=None,
    *,
    layout: str = "plateaux",
    prefix: str | None = None,
    convention: Convention | None = None,
    meta: dict | None = None,
) -> Path:
    r"""Write one state as plain-text matrices (see the module docstring for the layouts).

    **Arguments:**

    - `directory`: created if needed; existing files of the same names are overwritten.
    - `params`: one [`plateaux.OrderParams`][] (no batch axes), written as given.
    - `weights`: optionally `(student, teacher)` ([`plateaux.SoftCommittee`][] or arrays
      $J$ (K x N), $B$ (M x N)); they must realise `params` ($JJ^T/N = Q$, $JB^T/N = R$,
      $BB^T/N = T$ to 1e-10 relative), so the files never contradict each other.
    - `layout`: `"plateaux"` (default) or `"nn2pp"` (needs `prefix`).
    - `convention`: the [`plateaux.Convention`][] that `params.v`, `params.w` are written in;
      recorded in `convention.json` (omitted: nothing is recorded, which readers take as
      canonical).
    - `meta`: extra JSON-serialisable information, written to `meta.json`.

    **Returns:** the directory as a `Path`.
    """
    names = _names(layout, prefix)
    _unbatched(params)
    check_order_params(params, "params")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    delimiter = " " if layout == "plateaux" else ","
    if weights is not None:
        J, B = _weights_arrays(weights)
        _check_weights(J, B, params, "weights")
    for key in ("Q", "R", "T", "v", "w"):
        _write(directory / names[key], getattr(params, key), delimiter)
    if weights is not None:
        _write(directory / names["J"], J, delimiter)
        _write(directory / names["B"], B, delimiter)
        if layout == "nn2pp":
            _write(directory / names["B_v"], params.w, delimiter)
    if convention is not None:
        (directory / "convention.json").write_text(json.dumps(convention.to_dict(), indent=2) + "\n")
    if meta is not None:
        (directory / "meta.json").write_text(json.dumps(meta, indent=2, default=_jsonable) + "\n")
    return directory


def _jsonable(x):
    if isinstance(x, np.generic) or (hasattr(x, "shape") and np.ndim(x) == 0):
        return np.asarray(x).item()
    if hasattr(x, "shape"):
        return np.asarray(x).tolist()
    raise TypeError(f"cannot write {type(x).__name__} to JSON")


def _read(path: Path) -> np.ndarray:
    """A 2-d float array from a text file (spaces and/or commas, `#` comments)."""
    if not path.is_file():
        raise FileNotFoundError(f"missing file {path}")
    rows = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read {path}: {e}") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            rows.append([float(x) for x in _SEPARATORS.split(line) if x])
        except ValueError:
            raise ValueError(f"{path}, line {lineno}: not a row of numbers: {line[:80]!r}") from None
    if not rows:
        raise ValueError(f"{path} holds no numbers")
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"{path}: rows have different lengths {sorted({len(r) for r in rows})}")
    array = np.asarray(rows, dtype=float)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{path} has non-finite entries")
    return array


def _as_vector(array: np.ndarray, path: Path, n: int, what: str) -> np.ndarray:
    if 1 not in array.shape or array.size != n:
        raise ValueError(f"{path} has shape {array.shape}, expected {n} values ({what}) in a column or a row")
    return array.reshape(-1)


def _detect(directory: Path, layout: str | None, prefix: str | None) -> tuple[str, str | None]:
    if layout is not None:
        _names(layout, prefix)  # validates
        return layout, prefix
    if prefix is not None:
        return "nn2pp", prefix
    if (directory / "Q.txt").exists():
        return "plateaux", None
    prefixes = sorted(p.name[: -len("_Q0.dat")] for p in directory.glob("*_Q0.dat"))
    if len(prefixes) == 1:
        return "nn2pp", prefixes[0]
    if len(prefixes) > 1:
        raise ValueError(f"{directory} holds several nn2pp states {prefixes}; pass prefix=")
    raise FileNotFoundError(f"missing file {directory / 'Q.txt'} (and no nn2pp PREFIX_Q0.dat in {directory})")


def load_text(directory, *, layout: str | None = None, prefix: str | None = None) -> OrderParams:
    r"""Read one state written by [`plateaux.save_text`][] (or by nn2pp, or by hand).

    The layout is detected (`Q.txt` for plateaux, a unique `PREFIX_Q0.dat` for nn2pp) unless
    given. $K$ comes from `Q`, $M$ from `T`; `R`, `v`, `w` must match. If the weights files are
    present too, their overlaps must agree with $Q$, $R$, $T$. The values are returned as
    written: see [`plateaux.read_convention`][] for the convention of $v$, $w$.

    **Raises:** `FileNotFoundError` naming a missing file; `ValueError` naming the file with a
    wrong shape, unreadable or non-finite numbers, a non-symmetric $Q$ or $T$, or overlaps
    that no networks can have (joint covariance not positive semi-definite).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"missing directory {directory}")
    layout, prefix = _detect(directory, layout, prefix)
    names = _names(layout, prefix)
    paths = {k: directory / names[k] for k in ("Q", "R", "T", "v", "w")}
    Q, R, T = (_read(paths[k]) for k in ("Q", "R", "T"))
    for key, X in (("Q", Q), ("T", T)):
        if X.shape[0] != X.shape[1]:
            raise ValueError(f"{paths[key]} has shape {X.shape}; {key} must be square")
        asym = np.max(np.abs(X - X.T))
        if asym > _SYMMETRY_RTOL * max(np.max(np.abs(X)), 1.0):
            raise ValueError(f"{paths[key]} is not symmetric (max |{key} - {key}^T| = {asym:.3g})")
    K, M = Q.shape[0], T.shape[0]
    if R.shape != (K, M):
        raise ValueError(
            f"{paths['R']} has shape {R.shape}, but {names['Q']} gives K = {K} and {names['T']} gives "
            f"M = {M}, so R must be {K} x {M}"
        )
    v = _as_vector(_read(paths["v"]), paths["v"], K, f"K = {K} from {names['Q']}")
    w = _as_vector(_read(paths["w"]), paths["w"], M, f"M = {M} from {names['T']}")
    params = OrderParams(Q, R, T, v, w)
    try:
        check_order_params(params, f"order parameters in {directory}")
    except ValueError as e:
        raise ValueError(f"{e} (files {', '.join(names[k] for k in 'QRT')})") from None
    if (directory / names["J"]).exists() or (directory / names["B"]).exists():
        J, B = _read_weights(directory, names)
        _check_weights(J, B, params, f"{names['J']}, {names['B']}")
    return params


def _read_weights(directory: Path, names: dict) -> tuple[np.ndarray, np.ndarray]:
    J, B = _read(directory / names["J"]), _read(directory / names["B"])
    if J.shape[1] != B.shape[1]:
        raise ValueError(
            f"{directory / names['J']} has N = {J.shape[1]} columns but {names['B']} has {B.shape[1]}"
        )
    return J, B


def _check_weights(J, B, params: OrderParams, where: str) -> None:
    K, M = params.K, params.M
    if J.ndim != 2 or B.ndim != 2 or J.shape[0] != K or B.shape[0] != M or J.shape[1] != B.shape[1]:
        raise ValueError(
            f"{where}: weights of shapes {J.shape}, {B.shape} do not fit K = {K}, M = {M} "
            "(need (K, N) and (M, N))"
        )
    N = J.shape[1]
    for name, got, want in (
        ("Q = J J^T / N", J @ J.T / N, params.Q),
        ("R = J B^T / N", J @ B.T / N, params.R),
        ("T = B B^T / N", B @ B.T / N, params.T),
    ):
        want = np.asarray(want)
        err = np.max(np.abs(got - want))
        if err > _WEIGHTS_RTOL * max(np.max(np.abs(want)), 1.0):
            raise ValueError(f"{where}: the weights do not realise the overlaps ({name} off by {err:.3g})")


def load_text_networks(directory, *, layout: str | None = None, prefix: str | None = None, activation=None):
    r"""The networks stored next to a state: `(student, teacher)` [`plateaux.SoftCommittee`][]
    from $J$, $B$ and $v$, $w$ (as written; see [`plateaux.read_convention`][]). The state
    files are read and checked as by [`plateaux.load_text`][].

    **Raises:** `FileNotFoundError` naming a missing weights file, `ValueError` as
    [`plateaux.load_text`][] or when the weights do not realise the overlaps.
    """
    from ._network import SoftCommittee

    directory = Path(directory)
    params = load_text(directory, layout=layout, prefix=prefix)
    layout, prefix = _detect(directory, layout, prefix)
    J, B = _read_weights(directory, _names(layout, prefix))
    return SoftCommittee(J, params.v, activation), SoftCommittee(B, params.w, activation)


def read_convention(directory) -> Convention | None:
    """The [`plateaux.Convention`][] recorded in `directory/convention.json` (None if absent).

    **Raises:** `ValueError` naming the file if it is not a valid convention record."""
    path = Path(directory) / "convention.json"
    if not path.exists():
        return None
    try:
        return Convention.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: {e}") from None


def save_order_params(
    directory,
    source,
    *,
    index: int = 0,
    member: int | tuple | None = None,
    networks=None,
    layout: str = "plateaux",
    prefix: str | None = None,
    convention: Convention | None = None,
) -> Path:
    r"""Save the state of a [`plateaux.SimulationResult`][] or [`plateaux.Trajectory`][] at one
    saved time as text (see [`plateaux.save_text`][]), so an ODE can start from it:
    `px.integrate(px.load_text(directory), eta, ts)`.

    **Arguments:**

    - `source`: a simulation or trajectory (or a time series of [`plateaux.OrderParams`][]).
    - `index`: the time index (default 0: the initial state; -1: the last record).
    - `member`: for batched sources (e.g. seeds under `vmap`), which member (an int or a tuple
      for several batch axes); required when the source is batched.
    - `networks`: optionally the `(student, teacher)` weights at that time (e.g.
      `(sim.student, teacher)` with `index=-1`); they must realise the saved overlaps.
    - `layout`, `prefix`, `convention`: as for [`plateaux.save_text`][].

    `meta.json` records the source type, the time index, $\alpha$ there, the member and, for
    simulations, $N$, $\eta$ and the noise.
    """
    from ._trajectory import take_time

    series = getattr(source, "params", source)
    if not isinstance(series, OrderParams):
        raise TypeError(
            f"source must be a SimulationResult, Trajectory or OrderParams; got {type(source).__name__}"
        )
    batch = series.R.shape[:-3]
    if batch:
        if member is None:
            raise ValueError(f"the source is batched with shape {batch}; pass member= (e.g. member=0)")
        member = (member,) if isinstance(member, int) else tuple(member)
        if len(member) != len(batch) or any(not -b <= m < b for m, b in zip(member, batch)):
            raise ValueError(f"member={member} is out of range for batch shape {batch}")
    elif member is not None:
        raise ValueError(f"member={member} given but the source is not batched")
    member = member or ()
    n_times = series.R.shape[-3]
    if not -n_times <= index < n_times:
        raise ValueError(f"index={index} is out of range for {n_times} saved times")
    pick = lambda x: np.asarray(x)[member]  # noqa: E731
    params = take_time(OrderParams(*(pick(getattr(series, k)) for k in ("Q", "R", "T", "v", "w"))), index)
    meta = {"source": type(source).__name__, "index": index, "member": list(member) or None}
    if hasattr(source, "t"):
        meta["alpha"] = float(pick(source.t)[index])
    if hasattr(source, "N"):
        meta["N"] = int(source.N)
    for field in ("eta", "noise"):
        if hasattr(source, field):
            meta[field] = float(pick(getattr(source, field)))
    if networks is not None:
        J, B = _weights_arrays(networks)
        networks = (J[member] if J.ndim > 2 else J, B[member] if B.ndim > 2 else B)
    return save_text(
        directory, params, networks, layout=layout, prefix=prefix, convention=convention, meta=meta
    )
