"""Monitoring: quality over a window from ground truth, and input and prediction drift."""
