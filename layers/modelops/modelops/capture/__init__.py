"""What was served and what was true: capture records, feedback, label tokens and their join."""
