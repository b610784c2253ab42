"""Turning errors a user can cause into one clear message and a non-zero exit, without a traceback."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

from hydra.errors import InstantiationException

from mtmsa.utils.errors import UserInputError

log = logging.getLogger("mtmsa")

USER_ERRORS = (UserInputError, InstantiationException, FileNotFoundError)


def user_error_message(error: BaseException) -> str:
    """The message of the user error inside ``error`` (Hydra wraps errors raised by constructors)."""
    cause = error.__cause__ if isinstance(error, InstantiationException) and error.__cause__ else error
    return f"{type(cause).__name__}: {cause}"


@contextlib.contextmanager
def exit_on_user_error(exit_code: int = 2) -> Iterator[None]:
    """Run a command body; a user error ends it with one logged message and ``exit_code``."""
    try:
        yield
    except USER_ERRORS as error:
        message = user_error_message(error)
        log.error(message)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(exit_code)
