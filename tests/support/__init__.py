"""Helpers shared by the test modules: handler loading, a Lambda context, event files and AWS test doubles.

Test modules import from here (`from support.handlers import load_handler`), never from one another."""
