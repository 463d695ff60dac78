from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from footfall.kit.types import NonEmptyText, RequestBody, ResponseBody, Text

ShopType = Literal["physical", "web"]


class ShopCreate(RequestBody):
    name: NonEmptyText
    type: ShopType = "physical"
    reference: Text | None = None


class ShopOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    uuid: UUID
    name: str
    type: ShopType
    reference: str | None


class ShopResponse(ResponseBody):
    data: ShopOut
    meta: list[None] = []


class ShopListResponse(ResponseBody):
    data: list[ShopOut]
    meta: list[None] = []
