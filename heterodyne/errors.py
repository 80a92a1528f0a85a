"""The exception types the CLI prints as one line: bad input, and an output that cannot be written."""


class InputError(Exception):
    """Bad input from the user: a file, an HDF5 key, a config value.

    The message names the file (and key or option), says what was expected and what to do.
    The CLI prints it as one line and exits with status 2, having written no output.
    """


class OutputError(Exception):
    """An output file could not be written (no space left, permission denied, ...).

    The message names the output and the reason; the CLI prints it as one line and exits with
    status 1. The partial file has been removed.
    """
