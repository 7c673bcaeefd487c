"""Helpers shared by test modules (pytest puts this folder on sys.path)."""
import numpy as np

from snnconv.data import bundled_dataset_path, bundled_model_path


def write_bundled_config(path, num_norm_samples, simulation: dict, extra: str = ""):
    """A config for the bundled CNN and MNIST subset, results in ``out/`` beside it.

    ``simulation`` holds the [simulation] keys; ``extra`` is appended verbatim.
    """
    sim = "\n".join(f"{k} = {v}" for k, v in simulation.items())
    path.write_text(f"""
[paths]
filename_ann = {bundled_model_path()}
dataset_path = {bundled_dataset_path()}
log_dir_of_current_run = out
[input]
input_scale = 0.00392156862745098
[normalization]
num_norm_samples = {num_norm_samples}
[simulation]
{sim}
[output]
verbose = 0
{extra}
""")
    return path


def make_dense_model(seed=0):
    """20 inputs -> Dense 16 relu -> Dense 12 relu -> Dense 5 softmax."""
    import keras
    keras.utils.set_random_seed(seed)
    inp = keras.Input((20,))
    x = keras.layers.Dense(16, activation="relu", name="dense_1")(inp)
    x = keras.layers.Dense(12, activation="relu", name="dense_2")(x)
    return keras.Model(inp, keras.layers.Dense(5, activation="softmax", name="readout")(x))


def make_conv_model(seed=0):
    """(10, 10, 2) -> conv -> avg pool -> strided conv -> dense -> softmax."""
    import keras
    keras.utils.set_random_seed(seed)
    inp = keras.Input((10, 10, 2))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv_1")(inp)           # 8x8x4
    x = keras.layers.AveragePooling2D(2, name="pool")(x)                            # 4x4x4
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu",
                            name="conv_2")(x)                                        # 2x2x6
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(10, activation="relu", name="dense")(x)
    return keras.Model(inp, keras.layers.Dense(4, activation="softmax", name="readout")(x))


def make_branched_model(seed=0):
    """Functional model with Concatenate, Add, a ReLU that cannot merge, and both poolings."""
    import keras
    keras.utils.set_random_seed(seed)
    inp = keras.Input((10, 10, 2), name="x")
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a")(inp)
    b = keras.layers.Conv2D(3, 1, name="b")(inp)
    b_relu = keras.layers.ReLU(name="b_relu")(b)
    b_pool = keras.layers.AveragePooling2D(1, name="b_pool")(b)   # b has two readers
    cat = keras.layers.Concatenate(name="cat")([a, b_relu])
    c = keras.layers.Conv2D(3, 3, padding="same", name="c")(cat)
    add = keras.layers.Add(name="add")([c, b_pool])
    act = keras.layers.Activation("relu", name="add_relu")(add)
    mp = keras.layers.MaxPooling2D(2, name="mp")(act)
    zp = keras.layers.ZeroPadding2D(1, name="zp")(mp)
    dw = keras.layers.DepthwiseConv2D(3, activation="relu", name="dw")(zp)
    gap = keras.layers.GlobalAveragePooling2D(name="gap")(dw)
    out = keras.layers.Dense(4, activation="softmax", name="out")(gap)
    return keras.Model(inp, out, name="branched")


def normalise_on_random(model, n=64, seed=1):
    """``(graph, x)``: ``model`` parsed and max-normalised on ``n`` uniform [0, 1) inputs."""
    import snnconv
    x = np.random.default_rng(seed).uniform(0, 1, (n,) + model.input_shape[1:]).astype("float32")
    return snnconv.normalize(snnconv.parse(model), x, method="max"), x
