"""Subcommands of the ``edgetron`` command line; one module per subcommand.

Every module here defines ``register(subparsers)`` (see :mod:`edgetron.cli`).
"""
