"""The Hydra entry points' wrapper: a command line is composed and checked before Hydra starts the run.

``@hydra_entry("train")`` replaces ``@hydra.main(config_name="train")``. Before Hydra makes the run folder,
the command line is composed exactly as Hydra will compose it (the same search path, ``--config-dir``,
``hydra.searchpath``, experiments) and checked against the schemas (:mod:`mtmsa.conf.schema`); a mistake
ends in one ``error:`` line and exit code 2, with nothing written. Of a grid sweep (``-m a=1,2``), every
job's config is checked first. ``--help``, ``--cfg``, ``--info`` and the like go to Hydra unchanged.
``dry_run=true`` stops after the check, saying where the run would write.

A run that fails with a user error before it has written anything of its own (a data set folder without
images, a checkpoint that does not fit) removes the folder Hydra made for it (:mod:`mtmsa.utils.run_folder`).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import (
    ConfigCompositionException,
    HydraException,
    MissingConfigException,
    OverrideParseException,
)
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from mtmsa.conf import CONFIG_PATH
from mtmsa.conf.schema import ConfigError, check_config
from mtmsa.conf.schema.check import one_line, schema_at, unknown_key_message
from mtmsa.utils.cli import exit_on_user_error

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
HYDRA_ONLY_FLAGS = ("help", "hydra_help", "cfg", "info", "shell_completion", "experimental_rerun")


def hydra_entry(tool: str) -> Callable[[Callable[[DictConfig], Any]], Callable[..., Any]]:
    """Decorator of an entry point's task function (``tool``: train, evaluate or preview, also the name of
    its entry config): the returned ``main()`` checks the command line, then runs the task through Hydra
    with user errors ending in one line (see the module docstring)."""

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[..., Any]:
        @functools.wraps(task)  # Hydra names the job (and its log file) after the task's module
        def job(cfg: DictConfig) -> Any:
            from mtmsa.utils.run_folder import removed_if_unused

            with exit_on_user_error(), removed_if_unused():
                check_config(cfg, tool)  # each job of a sweep the command line could not expand
                return task(cfg)

        hydra_main = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=tool)(job)

        @functools.wraps(task)
        def main(cfg_passthrough: DictConfig | None = None) -> Any:
            if cfg_passthrough is None:
                with exit_on_user_error():
                    dry_run = check_command_line(tool, sys.argv[1:])
                if dry_run is not None:
                    print(dry_run)
                    return None
            return hydra_main(cfg_passthrough)

        return main

    return decorate


def check_command_line(tool: str, argv: Sequence[str]) -> str | None:
    """Compose and check what ``python -m mtmsa.<tool> <argv>`` will run; raise :class:`ConfigError`
    naming the first mistake. Returns the message of a dry run (``dry_run=true``) or None. Command lines
    that only ask Hydra something (``--help``, ``--cfg``, ...) are not checked."""
    from hydra._internal.utils import create_config_search_path, get_args_parser
    from hydra.core.global_hydra import GlobalHydra

    args = get_args_parser().parse_args(list(argv))
    if any(getattr(args, flag, None) for flag in HYDRA_ONLY_FLAGS) or args.config_path is not None:
        return None  # Hydra answers; with configs of another --config-path the job checks its own config
    search_path = create_config_search_path(CONFIG_PATH)
    if args.config_dir is not None:
        from hydra.core.config_search_path import SearchPathQuery

        config_dir = os.path.abspath(args.config_dir)
        if not os.path.isdir(config_dir):
            raise ConfigError([f"--config-dir {args.config_dir} is not a folder"])
        search_path.prepend("command-line", f"file://{config_dir}", SearchPathQuery(provider="schema"))
    config_name = args.config_name or tool
    GlobalHydra.instance().clear()
    try:
        from hydra._internal.hydra import Hydra

        app = Hydra.create_main_hydra2(task_name=tool, config_search_path=search_path)
        overrides = list(args.overrides)
        multirun = args.multirun or app.get_mode(config_name, overrides) == RunMode.MULTIRUN
        if multirun:
            return check_sweep(app, tool, config_name, overrides)
        cfg = composed(app, config_name, overrides, RunMode.RUN, tool)
        check_config(prepared(cfg, lambda: cfg.hydra.run.dir), tool)
        if cfg.get("dry_run"):
            return (
                f"dry run: the configuration is valid; the run would write to {cfg.hydra.runtime.output_dir}"
            )
        return None
    finally:
        GlobalHydra.instance().clear()


def check_sweep(app: Any, tool: str, config_name: str, overrides: list[str]) -> str | None:
    """Check every job of a grid sweep (the basic sweeper) or, for other sweepers (Optuna), the config
    they start from: their jobs are checked when they run."""
    cfg = composed(app, config_name, overrides, RunMode.MULTIRUN, tool)
    local = OmegaConf.select(cfg, "hydra.launcher._target_") == BASIC_LAUNCHER
    if OmegaConf.select(cfg, "hydra.sweeper._target_") != BASIC_SWEEPER:
        check_config(prepared(cfg, lambda: cfg.hydra.sweep.dir), tool, files=local)
        if cfg.get("dry_run"):
            return f"dry run: the configuration the sweep starts from is valid; it would write to {cfg.hydra.sweep.dir}"
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [
        f"{key}={value}" for key, value in (OmegaConf.select(cfg, "hydra.sweeper.params") or {}).items()
    ]
    parser = OverridesParser.create(config_loader=app.config_loader)
    try:
        parsed = parser.parse_overrides(params + list(cfg.hydra.overrides.task))
        jobs = BasicSweeper.split_arguments(parsed, None)[0]
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError([hydra_message(error)]) from None
    swept = {override.get_key_element() for override in parsed if override.is_sweep_override()}
    hydra_overrides = list(cfg.hydra.overrides.hydra)
    for number, job in enumerate(jobs):
        job_cfg = composed(app, config_name, hydra_overrides + list(job), RunMode.RUN, tool)
        try:
            check_config(prepared(job_cfg, lambda: cfg.hydra.sweep.dir), tool, files=local)
        except ConfigError as error:
            label = " ".join(o for o in job if o.partition("=")[0] in swept)
            raise ConfigError([f"job {number} of the sweep ({label}): {p}" for p in error.problems]) from None
    if cfg.get("dry_run"):
        return (
            f"dry run: the {len(jobs)} jobs of the sweep are valid; they would write to {cfg.hydra.sweep.dir}"
        )
    return None


def composed(app: Any, config_name: str, overrides: list[str], mode: RunMode, tool: str) -> DictConfig:
    """The config Hydra composes for ``overrides``; its errors become one-line ConfigErrors."""
    try:
        return app.compose_config(config_name, list(overrides), run_mode=mode, with_log_configuration=False)
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError([composition_message(app, config_name, overrides, error, tool)]) from None


def prepared(cfg: DictConfig, output_dir: Callable[[], str]) -> DictConfig:
    """``cfg`` with Hydra's run information set as for the run (its ``${hydra:...}`` values resolve);
    ``output_dir``: a zero-argument function giving the run's folder."""
    HydraConfig.instance().set_config(cfg)
    try:
        folder = os.path.abspath(str(output_dir()))
    except OmegaConfBaseException as error:  # an interpolation in hydra.run.dir that does not resolve
        raise ConfigError([f"the run folder (hydra.run.dir) cannot be resolved: {one_line(error)}"]) from None
    with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
        cfg.hydra.runtime.output_dir = folder
    HydraConfig.instance().set_config(cfg)
    return cfg


def composition_message(
    app: Any, config_name: str, overrides: list[str], error: BaseException, tool: str
) -> str:
    """One line for an error of Hydra's composition; a key that does not exist names the keys that do."""
    cause = error.__cause__
    if isinstance(error, MissingConfigException) and error.options is not None and error.missing_cfg_file:
        group, _, option = str(error.missing_cfg_file).rpartition("/")
        if group:
            return f"{group}={option} is not a config of the {group} group; use one of {', '.join(error.options)}"
    if (
        isinstance(error, ConfigCompositionException)
        and isinstance(cause, ConfigKeyError | ConfigAttributeError)
        and cause.full_key
    ):
        path = str(cause.full_key)
        rest = [o for o in overrides if not o.lstrip("~+").startswith(f"{path}=")]
        try:
            base = app.compose_config(config_name, rest, run_mode=RunMode.RUN, with_log_configuration=False)
        except (HydraException, OmegaConfBaseException):
            base = None
        schema = None if base is None else schema_at(base, tool, path.rpartition(".")[0])
        if schema is not None:
            return unknown_key_message(path, schema)
    return hydra_message(error)


def hydra_message(error: BaseException) -> str:
    """Hydra's (multi-line) message of ``error`` and its cause as one line."""
    parts = [str(error)] + ([str(error.__cause__)] if error.__cause__ is not None else [])
    if isinstance(error, OverrideParseException):
        parts.insert(0, f"cannot read the override {error.override}:")
    lines = [
        line.strip()
        for part in parts
        for line in part.splitlines()
        if line.strip() and not line.strip().startswith(("full_key:", "object_type=", "reference_type="))
    ]
    return "; ".join(dict.fromkeys(lines)).replace(":;", ":")
