"""A training killed at the end of an epoch, for the resume tests: pass `stop_after(n)` as on_epoch_end."""
from __future__ import annotations

from typing import Callable


class StopTraining(Exception):
    """Raised by stop_after's callback, as a kill between two epochs would stop the training."""


def stop_after(n: int) -> Callable[[int], None]:
    def callback(epoch: int) -> None:
        if epoch == n:
            raise StopTraining

    return callback
