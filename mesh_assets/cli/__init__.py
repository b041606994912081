"""`mesh`: the platform command line."""
