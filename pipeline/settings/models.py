"""``models.<name>``: the hyper-parameters each model class reads with ``self.param(...)``.

An entry named after a model class (:data:`MODEL_SCHEMAS`, the names of
:data:`pipeline.models.registry.MODEL_CLASSES`) holds that model's keys. Any other entry is a
variant: ``variant_of: <model>`` plus some of that model's keys, which override the parent's
(the ablations ``base``, ``base_sga``, ...). A model's new key is one field in its class here
(tests check the fields against what the model reads).
"""

from __future__ import annotations

from typing import Annotated, Any, Optional, Union

from pydantic import ConfigDict, Discriminator, Field, Tag, create_model

from pipeline.settings.types import (
    DropoutRate, Flag, Fraction, KeepRate, NonNegativeFloat, NonNegativeInt, Number, PositiveFloat, PositiveInt,
    Precision, Section,
)


class TrainOverrides(Section):
    """``models.<name>.train``: the ``train`` keys a model runs with instead (its authors' setup)."""

    lr: Optional[PositiveFloat] = None
    batch_size: Optional[PositiveInt] = None


class ModelParams(Section):
    """What every model entry may hold besides its own keys."""

    train: Optional[TrainOverrides] = None


class MFParams(ModelParams):
    reg: NonNegativeFloat


class LightGCNParams(ModelParams):
    n_layers: NonNegativeInt
    reg: NonNegativeFloat


class SiReNParams(ModelParams):
    offset: Number
    n_layers: NonNegativeInt
    mlp_layers: PositiveInt
    dropout: DropoutRate
    n_neg: PositiveInt
    reg: NonNegativeFloat


class FREEDOMParams(ModelParams):
    knn_k: PositiveInt
    mm_image_weight: Fraction
    dropout: DropoutRate
    n_mm_layers: NonNegativeInt
    n_ui_layers: NonNegativeInt
    reg: NonNegativeFloat


class LGMRecParams(ModelParams):
    n_ui_layers: NonNegativeInt
    n_mm_layers: NonNegativeInt
    n_hyper_layers: PositiveInt
    hyper_num: PositiveInt
    tau: PositiveFloat
    keep_rate: KeepRate
    alpha: Number
    cl_weight: NonNegativeFloat
    reg: NonNegativeFloat


class SiMGRParams(ModelParams):
    n_layers: NonNegativeInt
    mm_layers: NonNegativeInt
    reg: NonNegativeFloat
    lambda_s: NonNegativeFloat
    gamma: Number
    psi: Number
    beta_cl: NonNegativeFloat
    tau: PositiveFloat
    mlp_layers: PositiveInt
    feature_precision: Precision = "float32"
    pseudo_in_sign_loss: Flag = True
    sga: Flag
    pst: Flag
    apfi: Flag


MODEL_SCHEMAS: dict[str, type[Section]] = {
    "mf": MFParams,
    "lightgcn": LightGCNParams,
    "siren": SiReNParams,
    "freedom": FREEDOMParams,
    "lgmrec": LGMRecParams,
    "simgr": SiMGRParams,
}


def _variant(name: str, schema: type[Section]) -> type[Section]:
    """``schema`` with every key optional (an override) plus ``variant_of: <name>``."""
    fields: dict[str, Any] = {
        key: (Optional[f.rebuild_annotation()], Field(None, description=f.description)) for key, f in schema.model_fields.items()
    }
    fields["variant_of"] = (Annotated[str, Field(description=f"the parent model ({name})")], ...)
    return create_model(f"{schema.__name__}Variant", __base__=Section, **fields)


VARIANT_SCHEMAS = {name: _variant(name, schema) for name, schema in MODEL_SCHEMAS.items()}


def _parent_of(value: Any) -> str | None:
    parent = value.get("variant_of") if isinstance(value, dict) else None
    return parent if isinstance(parent, str) and parent in VARIANT_SCHEMAS else None


VariantEntry = Annotated[
    Union[tuple(Annotated[cls, Tag(name)] for name, cls in VARIANT_SCHEMAS.items())],  # type: ignore[misc]
    Discriminator(_parent_of, custom_error_type="model_variant", custom_error_message="not a model entry"),
    Field(description=f"a variant: variant_of ({', '.join(MODEL_SCHEMAS)}) and keys of that model"),
]


class _Models(Section):
    """Entries not named after a model class are variants."""

    model_config = ConfigDict(extra="allow", strict=True)
    __pydantic_extra__: dict[str, VariantEntry] = Field(init=False)


ModelsSection = create_model(
    "ModelsSection", __base__=_Models, **{name: (Optional[schema], None) for name, schema in MODEL_SCHEMAS.items()}
)
