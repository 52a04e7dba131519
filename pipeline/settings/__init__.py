"""The schema of ``params.yaml`` (pydantic), written once, and its one-line error messages.

- :mod:`~pipeline.settings.types`: the section base class and value types (each says what it expects), ``auto``
- :mod:`~pipeline.settings.datasets`: ``datasets.<name>`` entries, by ``format``
- :mod:`~pipeline.settings.models`: ``models.<name>`` as this layer sees it (``variant_of``, ``train``; each
  model's own keys are declared next to its class and checked by :mod:`pipeline.run.models`)
- :mod:`~pipeline.settings.sections`: the other sections and :class:`Params`, the whole file
- :mod:`~pipeline.settings.messages`: pydantic errors -> ``params.yaml: key: problem (expected ...)``
- :mod:`~pipeline.settings.validate`: schema + cross-section references; ``simgr check``'s summary
- :mod:`~pipeline.settings.load`: :func:`load_params`, the typed object every stage reads

The settings sit below every other part of the pipeline and import none of it.
"""

from pipeline.settings.load import PARAMS_FILE, load_params, read_params_file
from pipeline.settings.sections import Params
from pipeline.settings.validate import summary, validate_params, validate_section

__all__ = ["PARAMS_FILE", "Params", "load_params", "read_params_file", "summary", "validate_params", "validate_section"]
