"""The contact routes that change the contact's visits (visits.contacts): claim and delete. They sit
under /contacts, beside contacts.routes, in the package that may reach both contacts and visits."""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from footfall.contacts.schemas import (
    ContactClaim,
    ContactDelete,
    ContactOut,
    ContactResponse,
    ContactUuid,
    DeletedContactResponse,
    DeletionType,
)
from footfall.errors import ContactNotFound, write_error_responses
from footfall.http.routing import ApiRoute, Caller, Idempotent
from footfall.visits import contacts

router = APIRouter(prefix="/contacts", tags=["contacts"], route_class=ApiRoute)


@router.put(
    "/{uuid}/claim",
    dependencies=[Idempotent],
    response_model=ContactResponse,
    responses=write_error_responses(ContactNotFound),
    summary="Claim Anonymous Contact",
    operation_id="claimContact",
)
async def claim_contact(uuid: ContactUuid, body: ContactClaim, request: Request) -> ContactResponse:
    """Gives an anonymous contact its email; its visits stay its own. 1003 on `email` when the contact
    has another email already or another of the account's contacts has this one."""
    caller = Caller.of(request)
    contact = await contacts.claim(caller.tx, caller.account, uuid, body.email)
    return ContactResponse(data=ContactOut.model_validate(contact))


# Validated as the body's `type` is, when given; left out, None (FastAPI does not validate a default).
DeletionQuery = Annotated[DeletionType, Query(alias="type", description="DEFAULT or GDPR, when not in the body")]


@router.delete(
    "/{uuid}",
    dependencies=[Idempotent],
    response_model=DeletedContactResponse,
    responses=write_error_responses(ContactNotFound),
    summary="Delete Contact",
    operation_id="deleteContact",
)
@router.post(
    "/{uuid}/delete",
    dependencies=[Idempotent],
    response_model=DeletedContactResponse,
    responses=write_error_responses(ContactNotFound),
    summary="Delete Contact (as Leat's PHP SDK master sends it)",
    operation_id="deleteContactViaPost",
)
async def delete_contact(
    uuid: ContactUuid,
    request: Request,
    type_in_query: DeletionQuery = None,  # type: ignore[assignment]  # None: no type in the query
    body: ContactDelete | None = None,
) -> DeletedContactResponse:
    """Deletes the contact and its visits, sending contact_deleted and visit_deleted. `type` (in the
    body or the query, any case) is DEFAULT, or GDPR to also erase the email from every event body,
    delivery log and stored answer the account keeps."""
    caller = Caller.of(request)
    in_body = body.type if body is not None and "type" in body.model_fields_set else None
    deletion = in_body or type_in_query or "DEFAULT"
    await contacts.delete(caller.tx, caller.account, uuid, gdpr=deletion == "GDPR")
    return DeletedContactResponse()
