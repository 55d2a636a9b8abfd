"""Rolling a version out: the change set, the canary's status, the pre-traffic hook, scaling."""
