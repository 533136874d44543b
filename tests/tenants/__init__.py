"""A test app with tenants in a database: the model and the ``ISSUER_SOURCE`` of docs/tenants.md."""
