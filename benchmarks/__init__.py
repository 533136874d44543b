"""jwtguard against the floor and the alternatives: ``python -m benchmarks`` (see README, "Benchmarks")."""
