"""Repository-level pytest configuration: notebooks run in their fast mode under pytest."""

import os

os.environ.setdefault("PLATEAUX_FAST", "1")
