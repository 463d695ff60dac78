from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from footfall.kit.pagination import PageMeta
from footfall.kit.time import IsoDateTimeOut
from footfall.kit.types import NonEmptyText, RequestBody, ResponseBody, unchangeable
from footfall.webhooks.signing import check_secret
from footfall.webhooks.urls import check_url_form

EventType = Literal["visit_created", "visit_updated", "visit_deleted", "contact_created", "contact_deleted",
                    "visit_milestone", "contact_lapsed", "contact_returned"]
Status = Literal["ACTIVE", "INACTIVE"]
DeliveryState = Literal["pending", "succeeded", "failed"]


def _url(value: str) -> str:
    check_url_form(value)
    return value


def _secret(value: str) -> str:
    check_secret(value)
    return value


Url = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2048),
    AfterValidator(_url),
    Field(examples=["https://example.com/hooks/footfall"]),
]
Secret = Annotated[NonEmptyText, AfterValidator(_secret)]


class SubscriptionCreate(RequestBody):
    name: NonEmptyText
    event_type: EventType
    url: Url
    secret: Secret | None = Field(default=None, description="Generated (whsec_...) when left out.")


class SubscriptionUpdate(RequestBody):
    name: NonEmptyText | None = None
    url: Url | None = None
    status: Status | None = None
    event_type: SkipJsonSchema[Annotated[None, unchangeable("event_type", "a webhook subscription")]] = None
    secret: SkipJsonSchema[Annotated[None, unchangeable("secret", "a webhook subscription")]] = None


class SubscriptionOut(ResponseBody):
    model_config = ConfigDict(from_attributes=True)

    uuid: UUID
    name: str
    event_type: EventType
    url: str
    status: Status
    version: Literal["V1"] = "V1"
    created_at: IsoDateTimeOut


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="The signing secret; shown only in this answer.")


class SubscriptionResponse(ResponseBody):
    data: SubscriptionOut
    meta: list[None] = []


class SubscriptionCreatedResponse(ResponseBody):
    data: SubscriptionCreated
    meta: list[None] = []


class SubscriptionListResponse(BaseModel):
    data: list[SubscriptionOut]
    meta: PageMeta


class DeliveryOut(BaseModel):
    uuid: UUID = Field(description="The delivery, as every other resource is named")
    id: UUID = Field(description="The same as uuid, kept for clients written before uuid")
    event_id: UUID = Field(description="The event's uuid: the `id` its body and webhook-id header carry")
    event_type: EventType
    state: DeliveryState
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_response_body: str | None = Field(description="The start (at most 4 KiB) of the last answer.")
    last_attempt_at: IsoDateTimeOut | None
    next_attempt_at: IsoDateTimeOut | None = Field(description="Null once the delivery has succeeded or failed.")
    delivered_at: IsoDateTimeOut | None
    created_at: IsoDateTimeOut


class DeliveryResponse(ResponseBody):
    data: DeliveryOut
    meta: list[None] = []


class DeliveryListResponse(BaseModel):
    data: list[DeliveryOut]
    meta: PageMeta
