"""The one exception type for bad user input."""


class InputError(Exception):
    """Bad input from the user: a file, an HDF5 key, a config value.

    The message names the file (and key or option), says what was expected and what to do.
    The CLI prints it as one line and exits with status 2, having written no output.
    """
