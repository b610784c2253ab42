"""The model behind the editor and the API: one generator, loaded once, run by one worker thread.

Every fill, from the page or from ``POST /api/inpaint``, is a job for :class:`Engine`'s single worker, so
requests are queued instead of run at once (CPU threads, memory and the generator are not shared between
fills); at most ``max_waiting`` jobs may be queued or running, and one more is refused with
:class:`ServerBusy` (the API answers 503). A fill is :class:`~mtmsa.inference.inpainter.Inpainter`'s, the same
as ``mtmsa.inpaint``'s: known pixels are returned byte-identical. The generator's input and its attention
record of the last call are kept beside the result (:class:`Fill`), so the page can draw the temperature maps
of the fill it shows.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image

from mtmsa.inference.checkpoints import TrainedGenerator
from mtmsa.inference.inpainter import Inpainter
from mtmsa.visualization.grids import hole_view

T = TypeVar("T")


class ServerBusy(RuntimeError):
    """The queue of fills is full; the message says how many wait and what to do."""


@dataclass(frozen=True, eq=False)
class Fill:
    """One fill: the result and what the generator saw and used for it.

    Attributes:
        pixels: (H, W, 3) uint8, the input outside the hole.
        seen: (3, h, w) float in [0, 1], the window the generator was given (at most the trained resolution),
            the hole white: the picture the temperature maps are drawn beside.
        temperature: (heads, h', w') temperatures the attention used, or None (an attention without them).
        temperature_range: (t_min, t_max) of those temperatures, or None.
        seconds: wall time of the fill in the worker (no decoding or encoding of files).
    """

    pixels: np.ndarray
    seen: torch.Tensor | None
    temperature: torch.Tensor | None
    temperature_range: tuple[float, float] | None
    seconds: float


PNG_COMPRESS_LEVEL = 1
"""zlib level of the PNGs the server writes: the same pixels as ``mtmsa.inpaint``'s file (Pillow's level 6), in
files about 10% larger written 3-5x faster (1024x768: 0.13 s instead of 0.7 s on one CPU core)."""


def png_bytes(pixels: np.ndarray) -> bytes:
    """(H, W, 3) uint8 as a PNG file (RGB, 8 bits; see :data:`PNG_COMPRESS_LEVEL`)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


class Engine:
    """A trained generator behind a single worker thread and a bounded queue (see the module docstring)."""

    def __init__(self, trained: TrainedGenerator, device: torch.device | str = "cpu", max_waiting: int = 16):
        if max_waiting < 1:
            raise ValueError(f"max_waiting must be at least 1, got {max_waiting}")
        self.trained = trained
        self.device = torch.device(device)
        self.inpainter = Inpainter(trained.generator, trained.image_size, self.device)
        self.max_waiting = max_waiting
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mtmsa-fill")
        self._lock = threading.Lock()
        self._waiting = 0
        self._last_call: tuple[torch.Tensor, torch.Tensor, Any] | None = None
        trained.generator.register_forward_hook(self._remember_call)

    @property
    def waiting(self) -> int:
        """Jobs queued or running now."""
        return self._waiting

    def _remember_call(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        images, masks = args[0], args[1]
        self._last_call = (images.detach(), masks.detach(), getattr(output, "aux", None))

    def submit(self, function: Callable[..., T], *args: Any) -> Future[T]:
        """Queue ``function(*args)`` for the worker; raises ServerBusy when ``max_waiting`` jobs wait already."""
        with self._lock:
            if self._waiting >= self.max_waiting:
                raise ServerBusy(
                    f"the server is busy: {self._waiting} fills are queued or running (at most "
                    f"{self.max_waiting}); retry in a few seconds"
                )
            self._waiting += 1
        try:
            future = self._executor.submit(function, *args)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _: self._release())
        return future

    def _release(self) -> None:
        with self._lock:
            self._waiting -= 1

    def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on the worker, waiting for its turn (for callers on other threads)."""
        return self.submit(function, *args).result()

    def fill(self, image: np.ndarray, hole: np.ndarray, strokes: np.ndarray | None = None) -> Fill:
        """Inpaint now, on the calling thread: call it through :meth:`submit` or :meth:`run`."""
        start = time.perf_counter()
        self._last_call = None
        pixels = self.inpainter(image, hole, strokes)
        seconds = time.perf_counter() - start
        if self._last_call is None:
            return Fill(pixels, None, None, None, seconds)
        images, masks, aux = self._last_call
        seen = hole_view(images[:1], masks[:1])[0].cpu()
        temperature = getattr(aux, "temperature", None)
        temperature_range = getattr(aux, "temperature_range", None)
        if temperature is not None:
            temperature = temperature[0].float().cpu()
            temperature_range = None if temperature_range is None else tuple(map(float, temperature_range))
        return Fill(pixels, seen, temperature, temperature_range, seconds)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
