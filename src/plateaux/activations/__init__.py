"""Activations: `g`, `g'` and their Gaussian averages (closed forms where they exist)."""

from ._base import AbstractActivation as AbstractActivation
from ._erf import Erf as Erf

_BY_NAME = {"erf": Erf}


def activation_from_name(name: str) -> AbstractActivation:
    """Return the activation called `name` (e.g. ``"erf"``); `ValueError` names unknown ones."""
    try:
        return _BY_NAME[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; available: {sorted(_BY_NAME)}") from None
