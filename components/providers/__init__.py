"""Dynamic providers: what no ARM resource type does, done through the services' REST APIs.

- ``iot_edge``: an IoT Edge device identity, its deployment (``$edgeAgent`` / ``$edgeHub``
  desired properties) and the registry token password the device pulls with.
- ``arm_patch``: properties of an existing ARM resource set after its children exist (an
  Azure ML endpoint's traffic split).

**Do not move or rename these modules, nor the provider classes in them.** Pulumi pickles each
provider (with dill, by reference to its module and class) into the state of every stack that
uses it, and the engine's provider process loads it again, from the project folder, for every
``pulumi refresh``, ``up`` and ``destroy``. A moved class breaks those commands for every stack
deployed before the move. ``tests/infra/providers/test_pickled_providers.py`` loads each pickled
provider the way the engine does.
"""
