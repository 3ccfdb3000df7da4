"""The `plateaux` command line (thin over the Python API)."""

from ._main import main as main
