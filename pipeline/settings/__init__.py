"""The schema of ``params.yaml`` (pydantic), written once, and its one-line error messages.

- :mod:`~pipeline.settings.types`: the section base class and value types (each says what it expects)
- :mod:`~pipeline.settings.datasets`: ``datasets.<name>`` entries, by ``format``
- :mod:`~pipeline.settings.models`: ``models.<name>``: each model's keys; variants (``variant_of``)
- :mod:`~pipeline.settings.sections`: the other sections and :class:`Params`, the whole file
- :mod:`~pipeline.settings.messages`: pydantic errors -> ``params.yaml: key: problem (expected ...)``
- :mod:`~pipeline.settings.validate`: schema + cross-section references; ``simgr check``'s summary

:func:`pipeline.params.load_params` validates every time a stage or command reads the file.
"""

from pipeline.settings.validate import summary, validate_params, validate_section

__all__ = ["summary", "validate_params", "validate_section"]
