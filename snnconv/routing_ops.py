"""The array form of the IR's routing ops that move values without arithmetic
(``cropping2d``, ``upsampling2d``, ``permute``), on frames ``(batch, *shape)``;
shared by the ANN builder, the Spike* layers, the event simulator, the SynOp
counts and the Brian 2 connection maps, so all of them move values alike."""
from __future__ import annotations

ROUTES = ("cropping2d", "upsampling2d", "permute")


def route(op: str, params: dict, x):
    """``x`` (batch, ...) through the routing op ``op`` with ``params``."""
    from keras import ops

    if op == "cropping2d":
        (t, b), (l, r) = params["cropping"]
        return x[:, t:x.shape[1] - b, l:x.shape[2] - r, :]
    if op == "upsampling2d":
        size = tuple(int(v) for v in params["size"])
        if params["mode"] == "nearest":
            return ops.repeat(ops.repeat(x, size[0], axis=1), size[1], axis=2)
        return spread_with_zeros(x, size)
    if op == "permute":
        return ops.transpose(x, (0,) + tuple(int(d) for d in params["dims"]))
    raise ValueError(f"{op!r} is not a routing op ({', '.join(ROUTES)})")


def spread_with_zeros(x, size):
    """Each value of the frames ``x`` (batch, H, W, C) followed by ``size - 1`` zeros along
    rows and columns, without the trailing zeros: ``((H-1)·sh + 1, (W-1)·sw + 1)``."""
    from keras import ops

    sh, sw = (int(v) for v in size)
    _, h, w, c = x.shape
    y = ops.reshape(x, (-1, h, 1, w, 1, c))
    y = ops.pad(y, [(0, 0), (0, 0), (0, sh - 1), (0, 0), (0, sw - 1), (0, 0)])
    y = ops.reshape(y, (-1, h * sh, w * sw, c))
    return y[:, :(h - 1) * sh + 1, :(w - 1) * sw + 1, :]
