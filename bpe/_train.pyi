# Type stubs for the compiled trainer (bpe/_train.pyx).

from typing import Callable

def train_merges(
    pieces: list[bytes],
    counts: list[int],
    n_merges: int,
    progress: Callable[[int], None] | None = None,
    min_frequency: int = 1,
) -> list[tuple[int, int]]: ...
