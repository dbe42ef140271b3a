"""Workbench's run logger: ``get_azureml_logger().log("Accuracy", 0.9)`` records a metric."""

from xp_logging import log_metric as _log_metric

__all__ = ["get_azureml_logger"]


class AzureMLLogger(object):
    def log(self, name, value=None, *args, **kwargs):
        """Records ``value`` (a scalar or a list) as the next point of the metric ``name``."""
        _log_metric(name, value)
        return self


_logger = AzureMLLogger()


def get_azureml_logger():
    return _logger
