"""The ``optlab`` command line."""
