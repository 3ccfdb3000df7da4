"""What every results file records about how it was made: the engine's canonical formulas and
the package versions. Shared by the CLI and the sweep layer (both sit on top of the engine)."""

import platform

import jax
import numpy as np

CANONICAL_FORMULAS = {
    "output": "sigma = sum_i v_i g(x_i) (no 1/K prefactor)",
    "activation": "g(x) = erf(x / sqrt(2)) unless the results name another",
    "time": "alpha = examples / N",
    "learning_rate": "J_i += (eta / sqrt(N)) v_i g'(x_i) (tau - sigma) xi",
    "noise": "output-noise standard deviation s on the teacher label",
    "eg": "0.5 <(sigma - tau)^2> against the clean teacher label (noise floor s^2/2 excluded)",
}
"""The engine's (canonical) convention in words; a config's `[conventions]` is converted to it."""


def package_versions(*, device: bool = True) -> dict:
    """Versions of plateaux, Python and the numerical stack (and the first JAX device)."""
    import diffrax
    import equinox
    import optax

    from . import __version__

    versions = {
        "plateaux": __version__,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "diffrax": diffrax.__version__,
        "equinox": equinox.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
    }
    if device:
        versions["device"] = str(jax.devices()[0])
    return versions
