"""Small shape arithmetic shared by the layers, the backends and the NIR reader."""
from __future__ import annotations

import numpy as np


def pair(value) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(2, 3)`` or any length-2 sequence/array -> ``(2, 3)``."""
    arr = np.asarray(value).ravel()
    if arr.size == 1:
        return (int(arr[0]), int(arr[0]))
    if arr.size != 2:
        raise ValueError(f"expected one number or two, got {value!r}")
    return (int(arr[0]), int(arr[1]))


def conv_out_len(n: int, k: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Output length of a convolution or pooling along one axis (Keras's rule)."""
    if padding == "same":
        return -(-n // stride)
    return (n - ((k - 1) * dilation + 1)) // stride + 1
