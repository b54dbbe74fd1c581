"""Suite-wide settings: hypothesis without wall-clock deadlines.

CI and development machines here are 2 shared cores; a per-example deadline would turn a busy
moment into a failure that says nothing about the code. Examples stay bounded by each test's
``max_examples`` and by pytest-timeout.
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "clearchain", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("clearchain")
