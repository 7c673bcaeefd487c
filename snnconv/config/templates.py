"""The config templates shipped with snnconv, and writing them where a user wants them.

``config_templates/`` holds them in a source checkout; a wheel carries the same
files in ``snnconv/config/`` (symlinks there, copied into the wheel), beside
``mnist_xylo.keras``, the Xylo example's model. The templates other than
``default`` refer to the bundled model and data relative to
``config_templates/`` (``../snnconv/data/mnist_cnn.keras``), which means
nothing once copied elsewhere: :func:`template_text` writes those paths
absolute, wherever the package is installed, and drops
``log_dir_of_current_run``, so that the copy's results go to
``results/<the copy's name>/`` beside it.

    snnconv init --template demo my_demo.ini     # write_template("my_demo.ini", template="demo")
    snnconv demo                                 # demo_config(): the demo, results in ./results/demo
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, Optional

from snnconv.errors import ConfigError

#: template name -> what it is (``snnconv init --template NAME``)
TEMPLATES = {
    "default": "every key with its default and a comment (the start for your own model)",
    "demo": "the bundled MNIST CNN, rate-coded IF neurons, 2000 bundled test images",
    "ttfs": "the bundled CNN with time-to-first-spike coding (dynamic threshold)",
    "ttfs_exact": "the bundled CNN with exact time-to-first-spike coding, event-driven",
    "xylo": "a small MNIST network quantized to a SynSense Xylo chip",
    "stdp": "an unsupervised STDP network trained on the bundled MNIST subset",
    "compare": "a sweep (snnconv evaluate): rate coding against the TTFS codes",
    "synnet": "a SynNet keyword spotter for Xylo Audio 2 (snnconv train), bundled keywords",
}

_PACKAGE = Path(__file__).resolve().parents[1]          # .../snnconv
_PATH_KEYS = ("filename_ann", "dataset_path", "path_wd")
_LINE = re.compile(r"^(\s*)([A-Za-z_]+)(\s*[=:]\s*)(.*?)\s*$")


def template_file(name: str = "default") -> Path:
    """The template ``name`` (see :data:`TEMPLATES`): ``config_templates/<name>.ini``
    of a source checkout, else the copy inside the installed package."""
    if name not in TEMPLATES:
        raise ConfigError(f"unknown template {name!r}; known templates: {', '.join(TEMPLATES)}")
    candidates = (_PACKAGE.parent / "config_templates" / f"{name}.ini",
                  Path(__file__).resolve().parent / f"{name}.ini")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"cannot find the config template {name!r}; looked in: "
                      + ", ".join(str(c) for c in candidates) + " (broken install?)")


def bundled_file(value: str, template_dir: Path) -> Path:
    """Where a template's relative path to a bundled file points, in a checkout or a wheel.

    ``../snnconv/data/x`` is ``<package>/data/x``; any other file the
    template names (the Xylo example's model) ships in ``<package>/config/``.
    """
    direct = Path(os.path.abspath(template_dir / value))
    if direct.exists():
        return direct
    parts = Path(value).parts
    if "snnconv" in parts:
        inside = _PACKAGE.joinpath(*parts[len(parts) - parts[::-1].index("snnconv"):])
        if inside.exists():
            return inside
    shipped = Path(__file__).resolve().parent / Path(value).name
    if shipped.exists():
        return shipped
    raise ConfigError(f"the template in {template_dir} names {value}, which this installation "
                      "of snnconv lacks (broken install?)")


def template_text(name: str) -> str:
    """The text of template ``name`` as a copy elsewhere needs it (see the module docstring)."""
    source = template_file(name)
    text = source.read_text(encoding="utf-8")
    if name == "default":
        return text
    out, section = [], None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip().lower()
        m = _LINE.match(line)
        if section == "paths" and m and not stripped.startswith(("#", ";")):
            key, value = m.group(2).lower(), m.group(4)
            if key == "log_dir_of_current_run":
                out.append("# log_dir_of_current_run: empty = results/<this file's name>/ "
                           "beside this file")
                continue
            if key in _PATH_KEYS and value and not Path(os.path.expanduser(value)).is_absolute():
                line = f"{m.group(1)}{m.group(2)}{m.group(3)}{bundled_file(value, source.parent)}"
        out.append(line)
    header = (f"# Written by `snnconv init --template {name}`. The bundled model and data\n"
              "# are named by absolute paths; results go to results/<this file's name>/\n"
              "# beside this file. Keys not set here take snnconv's defaults\n"
              "# (`snnconv init --template default FILE` writes them all, with comments).\n")
    return header + "\n".join(out) + "\n"


def write_template(path, force: bool = False, template: str = "default") -> Path:
    """Write template ``template`` (see :data:`TEMPLATES`) to ``path``; return its absolute path.

    Refuses to overwrite an existing file unless ``force``.
    """
    target = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    if target.is_dir():
        raise ConfigError(f"{target} is a folder; give the path of the config file to write")
    if target.exists() and not force:
        raise ConfigError(
            f"{target} already exists; not overwriting it "
            "(use force=True, or --force on the command line)")
    text = template_text(template)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def demo_config(overrides: Optional[Mapping[str, Mapping[str, Any]]] = None,
                run_dir=None):
    """The bundled demo's :class:`~snnconv.config.Config`, results in ``run_dir``
    (default ``./results/demo``); ``overrides`` as for :func:`~snnconv.config.load_config`."""
    from snnconv.config.loader import load_config

    source = template_file("demo")
    text = template_text("demo")
    paths: dict[str, str] = {}
    section = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.strip("[]").strip().lower()
        m = _LINE.match(line)
        if section == "paths" and m and not stripped.startswith(("#", ";")):
            paths[m.group(2).lower()] = m.group(4)
    paths["log_dir_of_current_run"] = str(Path(run_dir) if run_dir is not None
                                          else Path.cwd() / "results" / "demo")
    merged = {s: dict(v) for s, v in (overrides or {}).items()}
    merged["paths"] = {**paths, **merged.get("paths", {})}
    return load_config(source, merged)
