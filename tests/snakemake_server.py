"""Imported once by the server of tests/snakemake_runner.py: what every Snakemake start does before it reads its
arguments (import Snakemake, collect its installed plugins), done there once for all the runs forked from it.
Python's forkserver ignores an ImportError of a module it preloads: one here stops the server instead, so that
the suite does not go on quietly without what it saves."""

try:
    import snakemake.cli  # noqa: F401
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry
    from snakemake_interface_logger_plugins.registry import LoggerPluginRegistry
    from snakemake_interface_report_plugins.registry import ReportPluginRegistry
    from snakemake_interface_scheduler_plugins.registry import SchedulerPluginRegistry
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry
except ImportError as error:
    raise RuntimeError(f"tests/snakemake_server.py: {error}") from error

for registry in (ExecutorPluginRegistry, StoragePluginRegistry, ReportPluginRegistry, LoggerPluginRegistry,
                 SchedulerPluginRegistry):
    registry()  # a singleton: it collects the installed plugins once
