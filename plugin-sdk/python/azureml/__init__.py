"""xp's stand-in for the Azure ML Workbench ``azureml`` package: enough for scripts written for
Workbench to run unchanged."""
