"""The model itself: artifacts, schema, data, baselines, training, and calling it. It imports no other context."""
