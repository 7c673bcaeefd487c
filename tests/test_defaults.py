"""One set of conversion defaults: the Python API's equal the config template's."""
from __future__ import annotations

import inspect

import configparser

from snnconv import defaults
from snnconv.config.loader import template_path


def _ini():
    parser = configparser.ConfigParser(inline_comment_prefixes=None)
    parser.read(template_path())
    return parser


def test_config_template_uses_the_api_defaults():
    ini = _ini()
    assert float(ini["cell"]["v_init"]) == defaults.V_INIT
    assert ini["cell"]["burst"] == defaults.BURST
    assert ini["normalization"]["method"] == defaults.NORMALIZATION_METHOD
    assert float(ini["normalization"]["percentile"]) == defaults.PERCENTILE
    assert ini.getboolean("normalization", "per_channel") == defaults.PER_CHANNEL
    assert int(ini["finetune"]["epochs"]) == defaults.FINETUNE_EPOCHS
    assert int(ini["finetune"]["batch_size"]) == defaults.FINETUNE_BATCH_SIZE
    assert float(ini["finetune"]["learning_rate"]) == defaults.FINETUNE_LEARNING_RATE
    assert ini["finetune"]["surrogate"] == defaults.FINETUNE_SURROGATE
    assert float(ini["finetune"]["distillation"]) == defaults.FINETUNE_DISTILLATION
    assert float(ini["finetune"]["temperature"]) == defaults.FINETUNE_TEMPERATURE
    assert int(ini["finetune"]["max_shift"]) == defaults.FINETUNE_MAX_SHIFT


def test_api_functions_use_the_defaults():
    from snnconv.normalization import normalize
    from snnconv.simulators.ini.simulator import IniSimulator
    norm = inspect.signature(normalize).parameters
    assert norm["method"].default == defaults.NORMALIZATION_METHOD
    assert norm["percentile"].default == defaults.PERCENTILE
    assert norm["per_channel"].default == defaults.PER_CHANNEL
    assert norm["num_steps"].default == defaults.NORMALIZATION_STEPS
    assert norm["v_init"].default == defaults.V_INIT
    assert inspect.signature(IniSimulator.convert).parameters["v_init"].default == \
        defaults.V_INIT
    assert inspect.signature(IniSimulator.convert).parameters["burst"].default == \
        defaults.BURST


def test_finetune_uses_the_defaults():
    from snnconv.finetuning import finetune
    from snnconv.simulators.ini.finetune import finetune as ini_finetune
    for fn in (finetune, ini_finetune):
        p = inspect.signature(fn).parameters
        assert p["epochs"].default == defaults.FINETUNE_EPOCHS
        assert p["batch_size"].default == defaults.FINETUNE_BATCH_SIZE
        assert p["learning_rate"].default == defaults.FINETUNE_LEARNING_RATE
        assert p["surrogate"].default == defaults.FINETUNE_SURROGATE
