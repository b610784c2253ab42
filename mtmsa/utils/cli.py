"""What the command-line tools share: user errors as one clear message and a non-zero exit (no traceback),
the device option, and the name a tool was called by."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.errors import InstantiationException

from mtmsa.utils.errors import UserInputError

if TYPE_CHECKING:
    import torch

log = logging.getLogger("mtmsa")

USER_ERRORS = (UserInputError, InstantiationException, FileNotFoundError)


def user_error_message(error: BaseException) -> str:
    """The message of the user error inside ``error`` (Hydra wraps errors raised by constructors); errors of
    mtmsa's own (:class:`UserInputError`) speak for themselves, others are prefixed with their class."""
    cause = error.__cause__ if isinstance(error, InstantiationException) and error.__cause__ else error
    return str(cause) if isinstance(cause, UserInputError) else f"{type(cause).__name__}: {cause}"


def log_to_files(message: str) -> None:
    """Write an error to the log files only (a run's ``<task>.log``): the terminal gets the ``error:`` line."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for logger in (log, logging.getLogger()):
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler) and record.levelno >= handler.level:
                handler.handle(record)


def in_sweep() -> bool:
    """Whether this process runs a job of a Hydra multirun (sweep)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@contextlib.contextmanager
def exit_on_user_error(exit_code: int = 2) -> Iterator[None]:
    """Run a command body; a user error ends it with one ``error:`` line on stderr (also written to the run's
    log file) and ``exit_code``. In a job of a sweep the error is raised on, so that the sweep records the
    job as failed and goes on with the next."""
    try:
        yield
    except USER_ERRORS as error:
        message = user_error_message(error)
        log_to_files(message)
        if in_sweep():
            raise
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
    import torch  # here, not at the top: a command checks its options before torch loads

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


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error:`` line naming the flag (no usage block) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = message.removeprefix("argument ")
        flag, _, reason = message.partition(": ")
        if reason.startswith(flag):  # a flag_type message names the flag and its value already
            message = reason
        print(f"error: {message}; see {self.prog} --help", file=sys.stderr)
        sys.exit(2)


def flag_type(flag: str, kind: Any) -> Callable[[str], Any]:
    """An argparse ``type`` for ``flag`` taking values of ``kind`` (a :mod:`mtmsa.conf.schema.kinds` kind):
    the text is read as the kind's type (int, float or str) and checked against its range."""
    from mtmsa.conf.schema.kinds import Integer, Number

    convert = int if isinstance(kind, Integer) else float if isinstance(kind, Number) else str

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = text
        if not kind.accepts(value):
            raise argparse.ArgumentTypeError(f"{flag} {text} is not {kind.allowed}")
        return value

    parse.__name__ = flag.lstrip("-")
    return parse
