"""Turning a Keras 3 model into the IR :class:`~snnconv.ir.Graph`.

The walk follows Keras's own graph of layer calls (``_nodes_by_depth`` of the
functional model; a Sequential model's internal functional model), deepest
first, so every layer is visited after the layers it reads. A nested
Sequential/functional sub-model is flattened: its inner input is bound to the
tensor the parent feeds it and its layers become nodes of the parent graph
(an inner layer whose name is already taken is renamed
``<submodel>_<layer>``). Each layer becomes either an IR node or a
:class:`~snnconv.parsing.folding.RawLayer` that :func:`~snnconv.parsing.folding.fold`
then removes (Dropout), folds (BatchNormalization; Rescaling and Normalization,
as an elementwise affine map, into the weight layers that read them) or merges
(Activation).

Layers are matched by their exact class, so a user subclass of, say,
``Dense`` with its own ``call`` is refused rather than mis-converted.
"""
from __future__ import annotations

import os

import numpy as np

from snnconv.errors import UnsupportedLayerError
from snnconv.files import unique_name
from snnconv.ir import Graph, Node
from snnconv.parsing.common import SUPPORTED_ACTIVATIONS, unsupported
from snnconv.parsing.folding import RawLayer, fold
from snnconv.parsing.loading import load_model


def parse(model_or_path) -> Graph:
    """Parse a ``keras.Model`` (or a ``.keras``/``.h5`` file path) into an IR graph."""
    import keras

    if isinstance(model_or_path, (str, os.PathLike)):
        model = load_model(model_or_path)
    elif isinstance(model_or_path, keras.Model):
        model = model_or_path
    else:
        raise TypeError(
            f"parse() expects a keras.Model or a path, got {type(model_or_path).__name__}")
    walker = _Walker()
    fn = walker.functional_of(model)
    if len(fn.inputs) != 1 or len(fn.outputs) != 1:
        raise UnsupportedLayerError(
            f"model {model.name!r} has {len(fn.inputs)} inputs and {len(fn.outputs)} outputs; "
            f"snnconv supports models with exactly one input and one output")
    outputs = walker.walk(model, bound=None, scope=model.name)
    nodes, _ = fold(walker.items, outputs[0], walker.classes)
    return Graph(nodes, name=model.name,
                 metadata={"source": "keras", "keras_version": keras.__version__})


# --------------------------------------------------------------------------- helpers

def _np(value) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float32)


def _key(tensor) -> tuple[int, int, int]:
    hist = tensor._keras_history
    return (id(hist.operation), hist.node_index, hist.tensor_index)


def _shape(layer, tensor) -> tuple[int, ...]:
    shape = tuple(tensor.shape[1:])
    if any(d is None for d in shape):
        raise unsupported(layer.name, type(layer).__name__,
                          f"its output shape {(None,) + shape} has an undefined dimension; "
                          f"give the model a fully defined input shape")
    return tuple(int(d) for d in shape)


def _activation_name(layer, fn) -> str:
    import keras

    known = {keras.activations.relu: "relu", keras.activations.linear: "linear",
             keras.activations.softmax: "softmax", keras.activations.relu6: "relu6"}
    if fn is None:
        return "linear"
    for candidate, name in known.items():
        if fn is candidate:
            return name
    name = getattr(fn, "__name__", None) or repr(fn)
    raise unsupported(layer.name, type(layer).__name__,
                      f"activation {name!r} is not supported (supported activations: "
                      f"{', '.join(SUPPORTED_ACTIVATIONS)})")


def _clip_relu(activation: str, params: dict) -> str:
    """``relu6`` is a ``relu`` node with ``max_value`` 6 in ``params``."""
    if activation == "relu6":
        params["max_value"] = 6.0
        return "relu"
    return activation


def _tuple(value) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


class _Walker:
    def __init__(self):
        self.items: list = []  # Node / RawLayer in topological order
        self.names: set[str] = set()
        self.classes: dict[str, str] = {}  # node/layer name -> Keras class name
        self.seen_ops: dict[int, str] = {}
        self.input_done = False
        self._converters = None

    # ---------------------------------------------------------------- structure
    def functional_of(self, model):
        import keras

        if isinstance(model, keras.Sequential):
            fn = getattr(model, "_functional", None)
            if fn is None:
                raise UnsupportedLayerError(
                    f"Sequential model {model.name!r} has no known input shape; start it with "
                    f"keras.Input(shape=...) (or call model.build(input_shape)) before converting")
            return fn
        if not hasattr(model, "_nodes_by_depth") or not hasattr(model, "inputs"):
            raise UnsupportedLayerError(
                f"model {model.name!r} ({type(model).__name__}) is a subclassed model without a "
                f"layer graph; only Sequential and functional models can be converted")
        return model

    def unique(self, name: str, scope: str) -> str:
        candidate = unique_name(name if name not in self.names else f"{scope}_{name}",
                                self.names)
        self.names.add(candidate)
        return candidate

    def add(self, item, class_name: str):
        self.items.append(item)
        self.classes[item.name] = class_name
        return item.name

    def walk(self, model, bound: list[str] | None, scope: str) -> list[str]:
        """Visit ``model``'s layers; return the names standing for its outputs."""
        import keras

        fn = self.functional_of(model)
        env: dict[tuple, str] = {}
        if bound is not None:
            if len(bound) != len(fn.inputs):
                raise UnsupportedLayerError(
                    f"nested model {model.name!r} takes {len(fn.inputs)} inputs but is called "
                    f"with {len(bound)}")
            for tensor, name in zip(fn.inputs, bound):
                env[_key(tensor)] = name
        for depth in sorted(fn._nodes_by_depth, reverse=True):
            for knode in fn._nodes_by_depth[depth]:
                op = knode.operation
                out_keys = [_key(t) for t in knode.output_tensors]
                if isinstance(op, keras.layers.InputLayer):
                    if all(k in env for k in out_keys):
                        continue  # the bound input of a nested model
                    if self.input_done:  # pragma: no cover - excluded by the 1-input check
                        raise UnsupportedLayerError("the model has more than one input")
                    self.input_done = True
                    shape = _shape(op, knode.output_tensors[0])
                    name = self.unique(op.name, scope)
                    env[out_keys[0]] = self.add(
                        Node(name=name, op="input", inputs=[], output_shape=shape,
                             source_layers=[op.name]), "InputLayer")
                    continue
                if id(op) in self.seen_ops:
                    raise unsupported(op.name, type(op).__name__,
                                      "the layer is called more than once (shared layers are "
                                      "not supported)")
                self.seen_ops[id(op)] = op.name
                in_names = [env[_key(t)] for t in knode.input_tensors]
                if isinstance(op, keras.Model):
                    sub_fn = self.functional_of(op)
                    if len(sub_fn.outputs) != 1:
                        raise unsupported(op.name, type(op).__name__,
                                          "nested models must have exactly one output")
                    outs = self.walk(op, in_names, scope=op.name)
                    for k, name in zip(out_keys, outs):
                        env[k] = name
                    continue
                if len(knode.output_tensors) != 1:
                    raise unsupported(op.name, type(op).__name__,
                                      "layers with several outputs are not supported")
                env[out_keys[0]] = self.convert(op, in_names, knode.output_tensors[0], scope)
        return [env[_key(t)] for t in fn.outputs]

    # ---------------------------------------------------------------- layers
    def converters(self):
        if self._converters is None:
            import keras

            from snnconv.layers.qcfs import QCFS

            L = keras.layers
            table = {
                L.Dense: self._dense, L.Conv2D: self._conv2d, L.Conv1D: self._conv1d,
                L.DepthwiseConv2D: self._depthwise, L.SeparableConv2D: self._separable,
                L.AveragePooling2D: self._pool, L.MaxPooling2D: self._pool,
                L.GlobalAveragePooling2D: self._gap, L.Flatten: self._flatten,
                L.Reshape: self._reshape, L.Concatenate: self._concat, L.Add: self._add,
                L.ZeroPadding2D: self._zeropad, L.BatchNormalization: self._bn,
                L.Activation: self._activation, L.ReLU: self._relu, L.Softmax: self._softmax,
                L.Rescaling: self._rescaling, L.Normalization: self._normalization,
                QCFS: self._qcfs,
                L.Conv2DTranspose: self._conv2d_transpose,
                L.MaxPooling1D: self._pool1d, L.AveragePooling1D: self._pool1d,
                L.GlobalAveragePooling1D: self._gap1d, L.GlobalMaxPooling1D: self._gmp1d,
                L.GlobalMaxPooling2D: self._gmp, L.Permute: self._permute,
                L.Subtract: self._subtract, L.Average: self._average,
                L.Maximum: self._maximum, L.ZeroPadding1D: self._zeropad1d,
                L.Cropping2D: self._crop, L.Cropping1D: self._crop1d,
                L.UpSampling2D: self._upsample, L.UpSampling1D: self._upsample1d,
            }
            for cls_name in ("Dropout", "SpatialDropout1D", "SpatialDropout2D",
                             "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
                             "AlphaDropout", "Identity"):
                cls = getattr(L, cls_name, None)
                if cls is not None:
                    table[cls] = self._passthrough
            self._converters = table
        return self._converters

    def convert(self, layer, inputs: list[str], out_tensor, scope: str) -> str:
        cls = type(layer).__name__
        fn = self.converters().get(type(layer))
        if fn is None:
            raise unsupported(layer.name, cls, f"layer type {cls} is not supported")
        if getattr(layer, "data_format", "channels_last") == "channels_first":
            raise unsupported(layer.name, cls, "data_format='channels_first' is not supported; "
                              "use channels_last")
        if getattr(layer, "quantization_mode", None) is not None:
            raise unsupported(layer.name, cls,
                              f"quantized layers (quantization_mode={layer.quantization_mode!r}) "
                              f"are not supported")
        shape = _shape(layer, out_tensor)
        name = self.unique(layer.name, scope)
        return fn(layer, name, inputs, shape)

    def _node(self, layer, name, op, inputs, shape, params=None, weights=None,
              activation="linear"):
        params = dict(params or {})
        activation = _clip_relu(activation, params)
        return self.add(Node(name=name, op=op, inputs=list(inputs), output_shape=shape,
                             params=params, weights=weights or {},
                             activation=activation, source_layers=[layer.name]),
                        type(layer).__name__)

    def _routing(self, layer, name, op, inputs, shape, params=None, suffix="",
                 activation="linear"):
        """A node standing for part of ``layer`` (named ``<name>_<suffix>``), not its output."""
        sub = self.unique(f"{name}_{suffix}", name)
        return self.add(Node(name=sub, op=op, inputs=list(inputs), output_shape=shape,
                             params=params or {}, activation=activation,
                             source_layers=[layer.name]), type(layer).__name__)

    def _as_2d(self, layer, name, inputs, build):
        """A 1-D layer over ``(length, channels)`` as its 2-D form over ``(1, length,
        channels)``: a reshape in, ``build(lifted_input)`` (the 2-D node(s), returning
        the last one's name) and a reshape back to the layer's output, under its name."""
        in_shape = self._in_shape(layer)
        lift = self._routing(layer, name, "reshape", inputs, (1,) + in_shape,
                             {"target_shape": (1,) + in_shape}, "2d")
        inner = build(lift)
        shape = tuple(int(d) for d in layer.output.shape[1:])
        return self._node(layer, name, "reshape", [inner], shape,
                          params={"target_shape": shape})

    @staticmethod
    def _bias(layer, n: int) -> np.ndarray:
        bias = getattr(layer, "bias", None)
        return np.zeros((n,), np.float32) if bias is None else _np(bias)

    def _dense(self, layer, name, inputs, shape):
        kernel = _np(layer.kernel)
        return self._node(layer, name, "dense", inputs, shape,
                          weights={"kernel": kernel, "bias": self._bias(layer, kernel.shape[1])},
                          activation=_activation_name(layer, layer.activation))

    def _conv_params(self, layer) -> dict:
        padding = str(layer.padding).lower()
        if padding not in ("valid", "same"):
            raise unsupported(layer.name, type(layer).__name__,
                              f"padding={padding!r} is not supported (use 'valid' or 'same')")
        return {"strides": _tuple(layer.strides), "padding": padding,
                "dilation_rate": _tuple(layer.dilation_rate)}

    def _conv2d(self, layer, name, inputs, shape):
        if int(getattr(layer, "groups", 1)) != 1:
            raise unsupported(layer.name, "Conv2D",
                              f"groups={layer.groups} is not supported (only groups=1)")
        kernel = _np(layer.kernel)
        return self._node(layer, name, "conv2d", inputs, shape, params=self._conv_params(layer),
                          weights={"kernel": kernel, "bias": self._bias(layer, kernel.shape[3])},
                          activation=_activation_name(layer, layer.activation))

    def _conv1d(self, layer, name, inputs, shape):
        # A Conv1D over (length, channels) is the Conv2D of a (1, k) kernel over
        # (1, length, channels): the IR gets a reshape in, that conv2d (named
        # after the layer, holding its activation) and a reshape back.
        if int(getattr(layer, "groups", 1)) != 1:
            raise unsupported(layer.name, "Conv1D",
                              f"groups={layer.groups} is not supported (only groups=1)")
        if str(layer.padding).lower() == "causal":
            raise unsupported(layer.name, "Conv1D", "padding='causal' is not supported "
                              "(use 'valid' or 'same')")
        in_shape = tuple(int(d) for d in layer.input.shape[1:])
        kernel = _np(layer.kernel)[None]                       # (1, k, cin, cout)
        params = self._conv_params(layer)
        params = {key: (1,) + tuple(v) if key != "padding" else v for key, v in params.items()}
        lift = self.unique(f"{name}_2d", name)
        self.add(Node(name=lift, op="reshape", inputs=list(inputs),
                      output_shape=(1,) + in_shape, params={"target_shape": (1,) + in_shape},
                      source_layers=[layer.name]), "Conv1D")
        conv = self._node(layer, name, "conv2d", [lift], (1,) + tuple(shape), params=params,
                          weights={"kernel": kernel,
                                   "bias": self._bias(layer, kernel.shape[3])},
                          activation=_activation_name(layer, layer.activation))
        drop = self.unique(f"{name}_1d", name)
        return self.add(Node(name=drop, op="reshape", inputs=[conv], output_shape=shape,
                             params={"target_shape": tuple(shape), "conv1d": conv},
                             source_layers=[layer.name]), "Conv1D")

    def _depthwise(self, layer, name, inputs, shape):
        kernel = _np(layer.kernel)
        params = self._conv_params(layer)
        params["depth_multiplier"] = int(layer.depth_multiplier)
        n_out = kernel.shape[2] * kernel.shape[3]
        return self._node(layer, name, "depthwise_conv2d", inputs, shape, params=params,
                          weights={"kernel": kernel, "bias": self._bias(layer, n_out)},
                          activation=_activation_name(layer, layer.activation))

    def _separable(self, layer, name, inputs, shape):
        # depthwise (linear, no bias) followed by a 1x1 convolution carrying bias and activation
        dw = _np(layer.depthwise_kernel)
        pw = _np(layer.pointwise_kernel)
        activation = _activation_name(layer, layer.activation)
        params = self._conv_params(layer)
        params["depth_multiplier"] = int(layer.depth_multiplier)
        dw_name = self.unique(f"{name}_depthwise", name)
        dw_shape = shape[:2] + (dw.shape[2] * dw.shape[3],)
        self.add(Node(name=dw_name, op="depthwise_conv2d", inputs=list(inputs),
                      output_shape=dw_shape, params=params,
                      weights={"kernel": dw, "bias": np.zeros((dw_shape[-1],), np.float32)},
                      source_layers=[layer.name]), "SeparableConv2D")
        return self._node(layer, name, "conv2d", [dw_name], shape,
                          params={"strides": (1, 1), "padding": "valid", "dilation_rate": (1, 1)},
                          weights={"kernel": pw, "bias": self._bias(layer, pw.shape[3])},
                          activation=activation)

    def _pool(self, layer, name, inputs, shape):
        import keras

        op = "max_pool2d" if isinstance(layer, keras.layers.MaxPooling2D) else "avg_pool2d"
        pool_size = _tuple(layer.pool_size)
        strides = pool_size if layer.strides is None else _tuple(layer.strides)
        padding = str(layer.padding).lower()
        return self._node(layer, name, op, inputs, shape,
                          params={"pool_size": pool_size, "strides": strides, "padding": padding})

    def _gap(self, layer, name, inputs, shape):
        if not getattr(layer, "keepdims", False):
            return self._node(layer, name, "global_avg_pool2d", inputs, shape)
        # keepdims=True: pool to (C,), then reshape to (1, 1, C) under the layer's name
        pool_name = self.unique(f"{name}_pool", name)
        self.add(Node(name=pool_name, op="global_avg_pool2d", inputs=list(inputs),
                      output_shape=(shape[-1],), source_layers=[layer.name]),
                 "GlobalAveragePooling2D")
        return self._node(layer, name, "reshape", [pool_name], shape,
                          params={"target_shape": shape})

    def _flatten(self, layer, name, inputs, shape):
        return self._node(layer, name, "flatten", inputs, shape)

    def _reshape(self, layer, name, inputs, shape):
        # -1 in the Keras target shape is resolved from the known output shape
        return self._node(layer, name, "reshape", inputs, shape, params={"target_shape": shape})

    def _concat(self, layer, name, inputs, shape):
        rank = len(shape) + 1  # with the batch axis
        axis = int(layer.axis)
        if axis >= 0:
            axis -= rank
        if axis == -rank:
            raise unsupported(layer.name, "Concatenate",
                              "concatenation along the batch axis is not supported")
        return self._node(layer, name, "concatenate", inputs, shape, params={"axis": axis})

    def _add(self, layer, name, inputs, shape):
        return self._node(layer, name, "add", inputs, shape)

    def _zeropad(self, layer, name, inputs, shape):
        (top, bottom), (left, right) = layer.padding
        return self._node(layer, name, "zero_padding2d", inputs, shape,
                          params={"padding": ((int(top), int(bottom)), (int(left), int(right)))})

    def _bn(self, layer, name, inputs, shape):
        rank = len(shape) + 1
        axis = layer.axis if not isinstance(layer.axis, (list, tuple)) else (
            layer.axis[0] if len(layer.axis) == 1 else None)
        if axis is None or int(axis) % rank != rank - 1:
            raise unsupported(layer.name, "BatchNormalization",
                              f"axis={layer.axis!r} is not supported; only the last (channel) "
                              f"axis can be folded")
        bn = {
            "gamma": _np(layer.gamma) if getattr(layer, "gamma", None) is not None else None,
            "beta": _np(layer.beta) if getattr(layer, "beta", None) is not None else None,
            "mean": _np(layer.moving_mean), "variance": _np(layer.moving_variance),
            "epsilon": float(layer.epsilon),
        }
        return self.add(RawLayer(name=name, kind="batchnorm", inputs=list(inputs),
                                 class_name="BatchNormalization", output_shape=shape, bn=bn),
                        "BatchNormalization")

    def _raw_activation(self, layer, name, inputs, shape, activation, params=None):
        params = dict(params or {})
        activation = _clip_relu(activation, params)
        return self.add(RawLayer(name=name, kind="activation", inputs=list(inputs),
                                 class_name=type(layer).__name__, output_shape=shape,
                                 activation=activation, params=params or None),
                        type(layer).__name__)

    def _qcfs(self, layer, name, inputs, shape):
        # a ReLU whose trained threshold is the node's normalisation scale
        qcfs = {"threshold": float(_np(layer.threshold)), "levels": int(layer.levels)}
        return self.add(RawLayer(name=name, kind="activation", inputs=list(inputs),
                                 class_name="QCFS", output_shape=shape, activation="relu",
                                 params={"qcfs": qcfs}), "QCFS")

    def _activation(self, layer, name, inputs, shape):
        return self._raw_activation(layer, name, inputs, shape,
                                    _activation_name(layer, layer.activation))

    def _relu(self, layer, name, inputs, shape):
        for attr in ("negative_slope", "threshold"):
            value = getattr(layer, attr, 0.0)
            if value is None or float(value) != 0.0:
                raise unsupported(layer.name, "ReLU",
                                  f"{attr}={value!r} is not supported; only ReLU() and "
                                  f"ReLU(max_value=...) (negative_slope=0, threshold=0)")
        max_value = getattr(layer, "max_value", None)
        if max_value is None:
            return self._raw_activation(layer, name, inputs, shape, "relu")
        if not float(max_value) > 0:
            raise unsupported(layer.name, "ReLU", f"max_value={max_value!r} must be positive")
        return self._raw_activation(layer, name, inputs, shape, "relu",
                                    {"max_value": float(max_value)})

    def _softmax(self, layer, name, inputs, shape):
        axis = layer.axis
        if isinstance(axis, (list, tuple)):
            axis = axis[0] if len(axis) == 1 else None
        rank = len(shape) + 1
        if axis is None or int(axis) % rank != rank - 1:
            raise unsupported(layer.name, "Softmax",
                              f"axis={layer.axis!r} is not supported; only the last axis")
        return self._raw_activation(layer, name, inputs, shape, "softmax")

    def _affine(self, layer, name, inputs, shape, scale, offset):
        try:
            scale = np.broadcast_to(np.asarray(scale, np.float64), shape).copy()
            offset = np.broadcast_to(np.asarray(offset, np.float64), shape).copy()
        except ValueError:
            raise unsupported(layer.name, type(layer).__name__,
                              f"its scale {np.shape(scale)} and offset {np.shape(offset)} do not "
                              f"broadcast to its output shape {shape}") from None
        return self.add(RawLayer(name=name, kind="affine", inputs=list(inputs),
                                 class_name=type(layer).__name__, output_shape=shape,
                                 affine=(scale, offset)), type(layer).__name__)

    def _rescaling(self, layer, name, inputs, shape):
        # y = x * scale + offset (a number, or one value per channel)
        return self._affine(layer, name, inputs, shape,
                            np.asarray(layer.scale, np.float64),
                            np.asarray(layer.offset, np.float64))

    def _normalization(self, layer, name, inputs, shape):
        # y = (x - mean) / max(sqrt(var), eps); with invert: y = mean + x * max(sqrt(var), eps)
        import keras

        if getattr(layer, "mean", None) is None or getattr(layer, "variance", None) is None:
            raise unsupported(layer.name, "Normalization",
                              "it has no mean and variance yet (adapt it, or give mean= and "
                              "variance=, before saving the model)")
        mean = np.asarray(keras.ops.convert_to_numpy(layer.mean), np.float64)
        var = np.asarray(keras.ops.convert_to_numpy(layer.variance), np.float64)
        mean, var = mean.reshape(mean.shape[1:]), var.reshape(var.shape[1:])  # no batch axis
        std = np.maximum(np.sqrt(var), keras.backend.epsilon())
        if getattr(layer, "invert", False):
            return self._affine(layer, name, inputs, shape, std, mean)
        return self._affine(layer, name, inputs, shape, 1.0 / std, -mean / std)

    def _passthrough(self, layer, name, inputs, shape):
        return self.add(RawLayer(name=name, kind="passthrough", inputs=list(inputs),
                                 class_name=type(layer).__name__, output_shape=shape),
                        type(layer).__name__)

    # ---------------------------------------------------------- lowered layers
    # Layers that are exactly a combination of IR ops: 1-D layers as their 2-D
    # form on a (1, length, channels) frame, global max pooling as a max pool
    # over the whole frame, Subtract/Average as a weighted add, Maximum as
    # max(a, b) = relu(a - b) + b, Conv2DTranspose as a convolution of the
    # input spread out with zeros.

    def _pool1d(self, layer, name, inputs, shape):
        import keras

        op = "max_pool2d" if isinstance(layer, keras.layers.MaxPooling1D) else "avg_pool2d"
        pool = _tuple(layer.pool_size)
        strides = pool if layer.strides is None else _tuple(layer.strides)
        params = {"pool_size": (1,) + pool, "strides": (1,) + strides,
                  "padding": str(layer.padding).lower()}
        return self._as_2d(layer, name, inputs, lambda src: self._routing(
            layer, name, op, [src], (1,) + tuple(shape), params, "pool"))

    def _gap1d(self, layer, name, inputs, shape):
        channels = int(shape[-1])
        return self._as_2d(layer, name, inputs, lambda src: self._routing(
            layer, name, "global_avg_pool2d", [src], (channels,), {}, "pool"))

    def _gmp_node(self, layer, name, src, frame):
        h, w, c = frame
        return self._routing(layer, name, "max_pool2d", [src], (1, 1, c),
                             {"pool_size": (h, w), "strides": (h, w), "padding": "valid"},
                             "pool")

    def _gmp(self, layer, name, inputs, shape):
        pooled = self._gmp_node(layer, name, inputs[0], self._in_shape(layer))
        return self._node(layer, name, "reshape", [pooled], shape,
                          params={"target_shape": tuple(shape)})

    def _gmp1d(self, layer, name, inputs, shape):
        length, channels = self._in_shape(layer)
        return self._as_2d(layer, name, inputs, lambda src: self._gmp_node(
            layer, name, src, (1, length, channels)))

    @staticmethod
    def _in_shape(layer) -> tuple[int, ...]:
        return tuple(int(d) for d in layer.input.shape[1:])

    def _zeropad1d(self, layer, name, inputs, shape):
        left, right = (int(p) for p in layer.padding)
        return self._as_2d(layer, name, inputs, lambda src: self._routing(
            layer, name, "zero_padding2d", [src], (1,) + tuple(shape),
            {"padding": ((0, 0), (left, right))}, "pad"))

    def _crop(self, layer, name, inputs, shape):
        (top, bottom), (left, right) = layer.cropping
        return self._node(layer, name, "cropping2d", inputs, shape,
                          params={"cropping": ((int(top), int(bottom)),
                                               (int(left), int(right)))})

    def _crop1d(self, layer, name, inputs, shape):
        left, right = (int(c) for c in layer.cropping)
        return self._as_2d(layer, name, inputs, lambda src: self._routing(
            layer, name, "cropping2d", [src], (1,) + tuple(shape),
            {"cropping": ((0, 0), (left, right))}, "crop"))

    def _upsample(self, layer, name, inputs, shape):
        if str(layer.interpolation) != "nearest":
            raise unsupported(layer.name, "UpSampling2D",
                              f"interpolation={layer.interpolation!r} is not supported "
                              f"(only 'nearest')")
        return self._node(layer, name, "upsampling2d", inputs, shape,
                          params={"size": _tuple(layer.size), "mode": "nearest"})

    def _upsample1d(self, layer, name, inputs, shape):
        size = (1, int(layer.size))
        return self._as_2d(layer, name, inputs, lambda src: self._routing(
            layer, name, "upsampling2d", [src], (1,) + tuple(shape),
            {"size": size, "mode": "nearest"}, "up"))

    def _permute(self, layer, name, inputs, shape):
        return self._node(layer, name, "permute", inputs, shape,
                          params={"dims": _tuple(layer.dims)})

    def _subtract(self, layer, name, inputs, shape):
        return self._node(layer, name, "add", inputs, shape,
                          params={"coefficients": [1.0, -1.0]})

    def _average(self, layer, name, inputs, shape):
        n = len(inputs)
        return self._node(layer, name, "add", inputs, shape,
                          params={"coefficients": [1.0 / n] * n})

    def _maximum(self, layer, name, inputs, shape):
        # max(a, b) = relu(a - b) + b, folded left over the inputs; the ReLU's
        # neurons carry a - b, which is why the SNN can take a maximum at all.
        if len({tuple(t.shape[1:]) for t in layer.input}) != 1:
            raise unsupported(layer.name, "Maximum", "its inputs have different shapes "
                              "(broadcasting is not supported)")
        current = inputs[0]
        for i, other in enumerate(inputs[1:], start=1):
            excess = self._routing(layer, name, "add", [current, other], shape,
                                   {"coefficients": [1.0, -1.0]}, f"excess{i}",
                                   activation="relu")
            if i == len(inputs) - 1:    # the last one stands for the layer
                return self._node(layer, name, "add", [excess, other], shape)
            current = self._routing(layer, name, "add", [excess, other], shape, {}, f"max{i}")

    def _conv2d_transpose(self, layer, name, inputs, shape):
        # y = conv_transpose(x, K, stride s) is the valid convolution, with K flipped
        # in space and its channel axes swapped, of x spread out with s - 1 zeros
        # between values and padded by k - 1 (less what 'same' crops) on each side.
        cls = "Conv2DTranspose"
        if getattr(layer, "output_padding", None) is not None:
            raise unsupported(layer.name, cls, "output_padding is not supported")
        if _tuple(layer.dilation_rate) != (1, 1):
            raise unsupported(layer.name, cls, "dilation_rate other than 1 is not supported")
        padding = str(layer.padding).lower()
        if padding not in ("valid", "same"):
            raise unsupported(layer.name, cls,
                              f"padding={padding!r} is not supported (use 'valid' or 'same')")
        kernel = _np(layer.kernel)                        # (kh, kw, out, in)
        kh, kw = kernel.shape[:2]
        strides = _tuple(layer.strides)
        h, w, cin = self._in_shape(layer)
        src = inputs[0]
        if strides != (1, 1):
            spread = ((h - 1) * strides[0] + 1, (w - 1) * strides[1] + 1, cin)
            src = self._routing(layer, name, "upsampling2d", [src], spread,
                                {"size": strides, "mode": "zeros"}, "spread")
        else:
            spread = (h, w, cin)
        pads = []
        for size, k, s, out in zip((h, w), (kh, kw), strides, shape[:2]):
            full = (size - 1) * s + k                     # the 'valid' output size
            crop = full - out     # what 'same' crops (more after); < 0: zeros added after
            before = max(crop, 0) // 2
            pads.append((k - 1 - before, k - 1 - (crop - before)))
        if any(p < 0 for pair in pads for p in pair):     # pragma: no cover - k >= 1
            raise unsupported(layer.name, cls, "this padding cannot be expressed")
        if any(p for pair in pads for p in pair):
            padded = (spread[0] + sum(pads[0]), spread[1] + sum(pads[1]), cin)
            src = self._routing(layer, name, "zero_padding2d", [src], padded,
                                {"padding": tuple(pads)}, "pad")
        flipped = np.ascontiguousarray(kernel[::-1, ::-1].transpose(0, 1, 3, 2))
        return self._node(layer, name, "conv2d", [src], shape,
                          params={"strides": (1, 1), "padding": "valid",
                                  "dilation_rate": (1, 1)},
                          weights={"kernel": flipped,
                                   "bias": self._bias(layer, flipped.shape[3])},
                          activation=_activation_name(layer, layer.activation))
