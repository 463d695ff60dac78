from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from footfall.contacts import export, service
from footfall.contacts.repository import EVERYONE
from footfall.contacts.schemas import (
    AnonymousContactCreate,
    ContactCreate,
    ContactListResponse,
    ContactOut,
    ContactResponse,
    ContactUuid,
    Email,
    audience_parameters,
    read_audience,
)
from footfall.errors import ContactNotFound, ReadOnlyToken, error_responses, write_error_responses
from footfall.http.files import file_response, file_responses
from footfall.http.routing import ApiRoute, Caller, Idempotent, writes
from footfall.kit.pagination import PageParams, page_params
from footfall.kit.rendering import EXPORT_FORMATS

router = APIRouter(prefix="/contacts", tags=["contacts"], route_class=ApiRoute)


@router.get(
    "", response_model=ContactListResponse, responses=error_responses(), summary="List Contacts",
    operation_id="listContacts",
    openapi_extra={"parameters": audience_parameters()},
)
async def list_contacts(
    request: Request, params: Annotated[PageParams, Depends(page_params(max_limit=100))]
) -> ContactListResponse:
    """The account's contacts, newest first, a page at a time; or an audience of them: the contacts
    whose visit count and first and last visit (of all their visits, or of one shop's) pass every
    bound given, in the order `sort` asks for. A contact without visits has visit_count 0 and null
    dates."""
    caller = Caller.of(request)
    query = request.query_params
    # The audience is read only when the query holds more than paging: the plain list validates nothing more.
    audience = read_audience(query) if len(query) > ("limit" in query) + ("page" in query) else EVERYONE
    contacts, total = await service.list_page(caller.tx, caller.account, params, audience)
    return ContactListResponse(data=[ContactOut.model_validate(c) for c in contacts], meta=params.meta(total))


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={**file_responses("contacts", "contact"), **error_responses()},
    summary="Export Contacts",
    operation_id="exportContacts",
    openapi_extra={"parameters": audience_parameters(ordered=False)},  # in the order stored
)
async def export_contacts(
    request: Request,
    format: Annotated[Literal[EXPORT_FORMATS], Query(description="ndjson (the default) or csv")] = "ndjson",  # type: ignore[valid-type]
) -> Response:
    """Every contact of the audience (every contact, with no filter), in the order they were stored,
    streamed a chunk at a time for a mailing tool: uuid, email, visit_count, first_visit_at and
    last_visit_at. Takes GET /contacts's filters; a `sort` is checked but not followed."""
    caller = Caller.of(request)
    audience = read_audience(request.query_params)
    database, account_id = request.app.state.database, caller.account.id

    async def body() -> AsyncIterator[bytes]:
        async for chunk in export.export(database, account_id, audience, format):
            yield chunk

    return file_response(body(), format, "contacts")


@router.post(
    "/async",
    dependencies=[Idempotent],
    response_model=ContactResponse,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": ContactResponse, "description": "The account had this email already."},
               **write_error_responses()},
    summary="Create Contact Async",
    operation_id="createContactAsync",
    description="Leat's asynchronous create; Footfall creates the contact at once and answers as POST /contacts.",
)
@router.post(
    "",
    dependencies=[Idempotent],
    response_model=ContactResponse,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": ContactResponse, "description": "The account had this email already."},
               **write_error_responses()},
    summary="Create Contact",
    operation_id="createContact",
)
async def create_contact(body: ContactCreate, request: Request, response: Response) -> ContactResponse:
    """Creates a contact, or answers the existing one (200) when the account has the email already."""
    caller = Caller.of(request)
    contact, created = await service.create(caller.tx, caller.account, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return ContactResponse(data=ContactOut.model_validate(contact))


EmailQuery = Annotated[Email, Query(description="The contact's email (matched lower-cased)")]


@router.get(
    "/find-one-by", response_model=ContactResponse, responses=error_responses(ContactNotFound),
    summary="Find Contact by Email",
    operation_id="findContactByEmail",
)
async def find_contact(email: EmailQuery, request: Request) -> ContactResponse:
    """The account's contact with this email; 404 (55031) when there is none."""
    caller = Caller.of(request)
    contact = await service.find_by_email(caller.tx, caller.account, email)
    return ContactResponse(data=ContactOut.model_validate(contact))


@router.get(
    "/find-or-create/async", response_model=ContactResponse, responses=error_responses(ReadOnlyToken),
    summary="Find or Create Contact by Email Async",
    operation_id="findOrCreateContactAsync",
    description="Leat's asynchronous variant; Footfall answers at once, as /contacts/find-or-create.",
)
@router.get(
    "/find-or-create", response_model=ContactResponse, responses=error_responses(ReadOnlyToken),
    summary="Find or Create Contact by Email",
    operation_id="findOrCreateContact",
)
@writes
async def find_or_create_contact(email: EmailQuery, request: Request) -> ContactResponse:
    """The account's contact with this email, created (as POST /contacts creates it) when there is none."""
    caller = Caller.of(request)
    contact, _ = await service.create(caller.tx, caller.account, ContactCreate(email=email))
    return ContactResponse(data=ContactOut.model_validate(contact))


@router.post(
    "/anonymous",
    dependencies=[Idempotent],
    response_model=ContactResponse,
    status_code=status.HTTP_201_CREATED,
    responses=write_error_responses(),
    summary="Create Anonymous Contact",
    operation_id="createAnonymousContact",
)
async def create_anonymous_contact(request: Request, body: AnonymousContactCreate | None = None) -> ContactResponse:
    """A contact with no email (`email` is null) whose visits can be recorded now; claim it with an
    email later."""
    caller = Caller.of(request)
    return ContactResponse(data=ContactOut.model_validate(await service.create_anonymous(caller.tx, caller.account)))


@router.get(
    "/{uuid}", response_model=ContactResponse, responses=error_responses(ContactNotFound), summary="Show Contact",
    operation_id="getContact",
)
async def get_contact(uuid: ContactUuid, request: Request) -> ContactResponse:
    """The contact with this UUID; 404 (55031) when the account has none."""
    caller = Caller.of(request)
    return ContactResponse(data=ContactOut.model_validate(await service.get(caller.tx, caller.account, uuid)))
