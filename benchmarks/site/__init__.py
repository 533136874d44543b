"""A one-view Django+DRF site for the load benchmark, served by gunicorn (see ``benchmarks.load``)."""
