"""Experiments on live and replayed traffic: sticky A/B assignment, the split, and the reports."""
