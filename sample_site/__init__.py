"""A Django project that uses jwtguard the way the documentation tells users to (see docs/demo.md)."""
