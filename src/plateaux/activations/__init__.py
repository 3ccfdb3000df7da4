"""Activations: `g`, `g'` and their Gaussian averages (closed forms where they exist,
Gauss-Hermite quadrature otherwise)."""

from ._base import AbstractActivation as AbstractActivation, as_pair as as_pair
from ._erf import Erf as Erf
from ._linear import Linear as Linear
from ._quadrature_acts import Custom as Custom, Sigmoid as Sigmoid, Tanh as Tanh
from ._relu import ReLU as ReLU
from ._report import quadrature_report as quadrature_report

_BY_NAME = {"erf": Erf, "linear": Linear, "relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


def activation_from_name(name: str) -> AbstractActivation:
    """Return the activation called `name` (one of "erf", "linear", "relu", "tanh",
    "sigmoid"); `ValueError` names unknown ones."""
    try:
        return _BY_NAME[str(name).lower()]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; available: {sorted(_BY_NAME)}") from None
