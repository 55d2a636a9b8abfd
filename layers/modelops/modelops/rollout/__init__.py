"""Rolling a version out: the stack update and the champion pin, the canary's status, the pre-traffic hook, scaling."""
