"""The package's shape: no import cycles, no backend type tests outside the backends,
and a backend registered from outside the package runs through every entry point."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

import snnconv
from snnconv import simulators

PACKAGE = Path(snnconv.__file__).parent
# each backend's own package; only code there may know that backend's types
BACKEND_HOMES = {"xylo": "simulators/xylo", "brian2": "simulators/brian", "stdp": "stdp",
                 "INI": "simulators/ini"}
BACKEND_TYPES = {"XyloNetwork": "xylo", "Brian2Network": "brian2", "STDPNetwork": "stdp",
                 "XyloSimulator": "xylo", "Brian2Simulator": "brian2", "STDPSimulator": "stdp",
                 "IniSimulator": "INI"}


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> snnconv modules it imports, counting imports inside functions too."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, (path, is_pkg) in mods.items():
        pkg = mod if is_pkg else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges[mod] |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in mods:
                        edges[mod].add(sub)
                    elif target in mods:
                        edges[mod].add(target)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}          # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        state[m] = 2
        path.pop()
        return None

    for m in sorted(edges):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _backend_of(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE).as_posix()
    for name, home in BACKEND_HOMES.items():
        if rel.startswith(home + "/") or rel == home + ".py":
            return name
    return None


def test_no_backend_type_tests_outside_the_backends():
    """Outside a backend's own package nothing names its classes or compares a
    simulator name with a backend's name (the registry, which lists the
    backends, and the backends' shared contract excepted)."""
    names = set(BACKEND_HOMES)
    offences = []
    for mod, (path, _) in _modules().items():
        if mod in ("snnconv.simulators", "snnconv.choices"):
            continue
        home = _backend_of(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name) and node.id in BACKEND_TYPES \
                    and BACKEND_TYPES[node.id] != home:
                offences.append(f"{mod}:{node.lineno} uses {node.id}")
            if isinstance(node, ast.Compare):
                consts = [c.value for c in [node.left, *node.comparators]
                          if isinstance(c, ast.Constant) and isinstance(c.value, str)]
                for c in consts:
                    if c in names and c != home:
                        offences.append(f"{mod}:{node.lineno} compares with {c!r}")
    assert not offences, "\n".join(offences)


# --- a backend from outside the package ---------------------------------------------

class AnnBackend(simulators.Simulator):
    """Runs the normalised ANN itself: the class score at every step is its
    output, so the 'SNN' accuracy must equal the ANN's."""

    name = "ann_test"
    spike_codes = ("rate",)
    saves = True
    file_suffix = ".annnet"

    class Net:
        def __init__(self, graph):
            self.graph, self.name = graph, f"{graph.name}_ann"
            self.model = snnconv.build_ann(graph)

    def convert(self, graph, spike_code="rate", **options):
        self.check_spike_code(spike_code)
        return self.Net(graph)

    def options_from_config(self, config):
        self.check_config(config)
        return {}

    def accepts(self, net):
        return isinstance(net, self.Net)

    def info(self, net):
        return simulators.NetworkInfo(
            dt=1.0, ann_macs=1, neurons={"none": 1}, output_name="none", spike_code="rate")

    def simulate_batch(self, net, x, steps, **options):
        out = np.asarray(net.model(np.asarray(x)))
        readout = np.repeat(out[:, None], steps, axis=1)
        zeros = np.zeros((len(x), steps))
        return simulators.BatchOutput(readout, {"none": zeros}, zeros)

    def save(self, net, path):
        import pickle
        path = Path(self.file_name(path))
        path.write_bytes(pickle.dumps(net.graph))
        return path


@pytest.fixture
def ann_backend():
    simulators.register_simulator(AnnBackend)
    yield AnnBackend
    simulators.unregister_simulator(AnnBackend.name)


def test_registered_backend_runs_through_evaluate(ann_backend, bundled):
    net = snnconv.convert(bundled.graph, simulator=ann_backend.name)
    x, y = bundled.data.x_test[:60], bundled.data.y_test[:60]
    r = snnconv.evaluate(net, x, y, num_steps=3, batch_size=25, progress=False)
    ann_acc = np.mean(bundled.ann.predict(x, verbose=0).argmax(1) == y)
    np.testing.assert_allclose(r.accuracy_per_step, [ann_acc] * 3)


def test_registered_backend_runs_through_run_and_sweep(ann_backend, tmp_path, write_config):
    from snnconv.config import load_config
    from snnconv.sweep import run_sweep

    cfg = write_config(tmp_path / "ann.ini", 50, dict(
        simulator=ann_backend.name, duration=2, batch_size=50, num_to_test=100))
    out = snnconv.run(load_config(cfg))
    summary = json.loads((out.run_dir / "summary.json").read_text())
    assert summary["simulator"] == ann_backend.name
    assert summary["snn_accuracy"] == pytest.approx(summary["ann_accuracy"])
    assert (out.run_dir / "snn.annnet").is_file()        # saved by the backend's own save

    sweep = tmp_path / "sweep.ini"
    sweep.write_text(cfg.read_text().replace("duration = 2", "duration = 2, 3")
                     .replace("log_dir_of_current_run = out", "log_dir_of_current_run = sweep"))
    run_sweep(sweep)
    rows = json.loads((tmp_path / "sweep" / "comparison.json").read_text())
    assert len(rows) == 2


def test_backend_refuses_settings_it_cannot_honour(ann_backend, tmp_path, write_config):
    from snnconv.config import load_config
    from snnconv.errors import ConfigError

    cfg = write_config(tmp_path / "ann.ini", 50, dict(
        simulator=ann_backend.name, duration=2, distribute="multi_worker"))
    with pytest.raises(ConfigError, match=r"simulation\.distribute = multi_worker.*ann_test"):
        snnconv.run(load_config(cfg))


def test_allowed_values_agree_with_what_implements_them():
    """The lists in snnconv.choices are the ones the implementations know."""
    from snnconv import choices
    from snnconv.neurons import integrate_fire
    from snnconv.stdp.rules import RULES

    assert set(RULES) == set(choices.STDP_RULES)
    assert integrate_fire.RESETS == choices.RESET_MODES
    configurable = {name for name, cls in simulators.SIMULATORS.items() if cls.configurable}
    assert configurable == set(choices.SIMULATORS)
