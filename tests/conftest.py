"""Suite-wide settings: hypothesis without wall-clock deadlines.

CI and development machines here are 2 shared cores; a per-example deadline would turn a busy
moment into a failure that says nothing about the code. Examples stay bounded by each test's
``max_examples`` and by pytest-timeout.

The repository root goes on ``sys.path`` (``python -m pytest`` adds it, the ``pytest`` script
does not), so child processes that multiprocessing spawns can import ``tests`` either way.
"""

import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

settings.register_profile(
    "clearchain", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("clearchain")
