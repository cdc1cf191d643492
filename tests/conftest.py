"""Shared test configuration: hypothesis profiles.

The ``ci`` profile is derandomised (reproducible) and bounded; it is selected when the
environment variable ``CI`` is set, else ``dev`` (random, same bounds).
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
