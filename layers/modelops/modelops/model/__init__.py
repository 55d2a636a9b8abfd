"""The model itself: artifacts, schema, data, training and calling it (the only numpy/sklearn importers)."""
