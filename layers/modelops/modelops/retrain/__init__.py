"""The retrain loop: its events, data, decision rules, the locked run, approval and finalize."""
