"""Fixtures shared by every test layer."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def exchange() -> str:
    """A fresh exchange name per test, so tests never see each other's messages."""
    return f"logcast-test-{uuid.uuid4().hex[:12]}"
