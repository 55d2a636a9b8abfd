"""Quality over a window, and input and prediction drift."""
