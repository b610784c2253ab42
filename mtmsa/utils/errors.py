"""The base class of errors a user can cause and fix (a missing folder, a corrupt file, a bad option)."""


class UserInputError(ValueError):
    """Bad input from a user; the message names the thing and the fix. The command-line entry points turn
    it into one line on stderr and exit code 2 (:func:`mtmsa.utils.cli.exit_on_user_error`)."""
