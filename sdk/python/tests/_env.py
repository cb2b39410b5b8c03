"""Where the nodes under test are: homes passed by test/integration/python-sdk.test.ts."""

import os
import unittest


def home(name: str) -> str:
    """The home folder of node ``name`` (``A``, ``B`` or ``C``) from
    ``AGENTNET_TEST_HOME_<name>``; the test is skipped without it (run the
    suite through ``npm test``, which starts the nodes)."""
    value = os.environ.get(f"AGENTNET_TEST_HOME_{name}")
    if not value:
        raise unittest.SkipTest(f"AGENTNET_TEST_HOME_{name} is not set: run through test/integration/python-sdk.test.ts")
    return value


WAIT = 20.0
"""Seconds to wait for a notification."""
