"""Configuration: one commented INI template holds every default.

The user's file is laid over ``config_templates/default.ini`` and validated
once into frozen dataclasses, one per section::

    from snnconv.config import load_config
    config = load_config("my.ini", overrides={"simulation": {"duration": "50"}})
    config.simulation.num_steps
"""
from snnconv.config.loader import load_config, template_path
from snnconv.config.templates import TEMPLATES, demo_config, template_file, write_template
from snnconv.config.schema import (
    DATASET_FORMATS, NORMALIZATION_METHODS, RESET_MODES, SECTIONS, SIMULATORS,
    SPIKE_CODES, CellConfig, Config, ConversionConfig, InputConfig,
    NormalizationConfig, OutputConfig, PathsConfig, SimulationConfig, ToolsConfig,
)

__all__ = [
    "load_config", "template_path", "write_template", "TEMPLATES", "template_file",
    "demo_config", "Config", "PathsConfig",
    "ToolsConfig", "InputConfig", "NormalizationConfig", "ConversionConfig",
    "SimulationConfig", "CellConfig", "OutputConfig", "SECTIONS", "SIMULATORS",
    "SPIKE_CODES", "RESET_MODES", "NORMALIZATION_METHODS", "DATASET_FORMATS",
]
