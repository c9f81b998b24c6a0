"""Helpers shared by the test suites: the real broker, child processes, ports."""
