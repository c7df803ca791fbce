"""A pytest plugin for tests/lib/test_xdist_workers.py: after collection, prints each test's
xdist group as ``GROUP<TAB>node id<TAB>group``."""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("xdist_group")
        print(f"GROUP\t{item.nodeid}\t{marker.args[0] if marker else ''}")
