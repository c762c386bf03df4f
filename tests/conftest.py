"""Shared fixtures live in tests/fixtures/, one module per real service."""

pytest_plugins = [
    "tests.fixtures.kafka",
    "tests.fixtures.databases",
]
