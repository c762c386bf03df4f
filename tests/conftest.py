"""Shared fixtures live in tests/fixtures/, one module per real service."""

pytest_plugins = [
    "tests.fixtures.kafka",
    "tests.fixtures.databases",
    "tests.fixtures.http_receiver",
    "tests.fixtures.alertmanager",
]
