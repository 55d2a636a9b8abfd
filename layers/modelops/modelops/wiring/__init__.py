"""Assembling each function's objects from its environment, with overrides for tests."""
