"""The ``azureml.contrib.services`` request/response API for ``@rawhttp`` entry scripts."""
