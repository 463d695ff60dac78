"""Types shared by every domain: input fields (bounded, NUL-free text), answers, and the answer to a delete."""

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StringConstraints, model_validator


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refusing it everywhere keeps both databases alike.
    if "\x00" in value:
        raise ValueError("Must not contain NUL characters.")
    return value


Text = Annotated[str, StringConstraints(max_length=255), AfterValidator(_no_nul)]
NonEmptyText = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_no_nul)]


class RequestBody(BaseModel):
    """A request body. Empty strings count as absent values (null), as Laravel, and so Leat, reads them."""

    @model_validator(mode="before")
    @classmethod
    def _empty_strings_are_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: (None if value == "" else value) for key, value in data.items()}
        return data


def unchangeable(field: str, what: str) -> BeforeValidator:
    """For a field an update may not send: refused with a per-field 1003 whatever its value."""

    def refuse(_: Any) -> None:
        raise ValueError(f"The {field} of {what} cannot be changed.")

    return BeforeValidator(refuse)


class ResponseBody(BaseModel):
    """An answer whose every field is always sent, defaults included: the OpenAPI document marks each
    one required, so generated clients read none of them as optional."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class DeletedResponse(ResponseBody):
    """Leat's answer to its own deletes."""

    data: list[None] = []
    meta: list[None] = []
