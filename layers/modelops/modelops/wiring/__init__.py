"""Assembling each function's objects from its environment (build(env, **overrides)), so tests inject fakes."""
