"""The retrain loop: data, the decision, the locked run, approval and finalize."""
