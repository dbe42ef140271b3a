"""xp's part of the ``azureml`` namespace: ``azureml.logging``, enough for scripts written for
Azure ML Workbench to run unchanged.

A pkgutil-style namespace package, as PyPI's ``azureml-*`` packages ship theirs: every other
``azureml`` folder on ``sys.path`` (an ``azureml-*`` package in site-packages, one vendored in
the project) joins this package's path, so ``azureml.logging`` comes from xp and everything
else from where it lives. (A folder without ``__init__.py`` would do that too, except beside a
regular ``azureml`` package later on the path that does not extend its path: that one would
then hide xp's part. This way it cannot.)
"""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)
