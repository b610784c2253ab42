"""What the command-line tools share: user errors as one clear message and a non-zero exit (no traceback),
the device option, and the name a tool was called by."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
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


def one_line_errors() -> None:
    """Command-line tools: user errors print one line (no OpenCV decoder chatter, no second copy of the
    message from logging's last-resort handler)."""
    import cv2.utils.logging

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    if not log.hasHandlers():
        log.addHandler(logging.NullHandler())


DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(name: str, option: str = "device") -> torch.device:
    """The device of a ``device`` option: ``auto`` -> CUDA when available, else the CPU; otherwise ``cpu``,
    ``cuda``, ``cuda:N`` or ``mps``, checked to exist. ``option`` is how the user spells the option
    (``device`` for a Hydra override, ``--device`` for a flag), for the message of the UserInputError."""
    spelled = f"{option} {name}" if option.startswith("-") else f"{option}={name}"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise UserInputError(f"{spelled} is not a device; use auto, cpu, cuda or cuda:N") from error
    if device.type not in DEVICE_TYPES:
        raise UserInputError(f"{spelled} is not a device; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserInputError(f"{spelled} asks for CUDA, which is not available; use cpu")
        if device.index is not None and device.index >= count:
            raise UserInputError(
                f"{spelled} asks for CUDA device {device.index}, but {count} CUDA device(s) exist"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserInputError(f"{spelled} asks for Apple's MPS, which is not available; use cpu")
    return device


def program_name(module: str) -> str:
    """How the user called a tool: its console script (``mtmsa-inpaint``) or ``python -m <module>``."""
    script = Path(sys.argv[0]).name
    return script if script.startswith("mtmsa-") else f"python -m {module}"
