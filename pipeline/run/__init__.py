"""Setting up a training run, the one place: typed settings -> inputs -> model -> trainer.

- :mod:`~pipeline.run.models`: a params.yaml model entry as its model sees it; ``auto`` values and their sources
- :mod:`~pipeline.run.selection`: the selected.json a study writes and runs read
- :mod:`~pipeline.run.setup`: :func:`~pipeline.run.setup.prepare` / ``final_run`` -> ``load_data`` -> ``train``
- :mod:`~pipeline.run.groups`: the training groups (what each reads); :mod:`~pipeline.run.dvcyaml` generates their stages
"""
