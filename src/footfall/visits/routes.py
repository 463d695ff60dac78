from collections.abc import AsyncIterator
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from footfall import metrics
from footfall.errors import (
    ContactNotFound,
    ExternalIdConflict,
    ShopNotFound,
    VisitNotFound,
    error_body,
    error_responses,
    write_error_responses,
)
from footfall.http.files import file_response, file_responses
from footfall.http.routing import ApiRoute, Caller, Idempotent
from footfall.kit.pagination import PageParams, PageQuery, limit_query
from footfall.kit.rendering import EXPORT_FORMATS, json_answer
from footfall.kit.types import DeletedResponse
from footfall.visits import export, service
from footfall.visits.repository import VisitFilter
from footfall.visits.schemas import (
    ChangesResponse,
    VisitBatch,
    VisitBatchResponse,
    VisitCreate,
    VisitListResponse,
    VisitResponse,
    VisitUpdate,
    changes_answer,
    filter_parameters,
    read_filters,
    visit_answer,
    visit_fields,
    visits_answer,
)

router = APIRouter(prefix="/visits", tags=["visits"], route_class=ApiRoute)

VisitUuid = Annotated[UUID, Path(description="The visit's UUID")]


@router.get(
    "",
    response_model=VisitListResponse,
    responses=error_responses(),
    summary="List Visits",
    operation_id="listVisits",
    openapi_extra={"parameters": filter_parameters()},
)
async def list_visits(
    request: Request,
    limit: limit_query(500) = 30,  # type: ignore[valid-type]  # an Annotated a function builds
    page: PageQuery = 1,
    contact_uuid: Annotated[UUID | None, Query(description="A contact's UUID to filter the Visits by")] = None,
) -> Response:
    """Newest created_at first, unless `sort` says otherwise. Every filter combines with the others."""
    caller = Caller.of(request)
    params = PageParams(limit, page)
    # Footfall's own filters are read only when the query holds more than Leat's parameters: declared
    # one by one, FastAPI would validate all fifteen on every request, a third of a plain list's time.
    query = request.query_params
    if len(query) > ("limit" in query) + ("page" in query) + ("contact_uuid" in query):
        filters = read_filters(query, contact_uuid)
    else:
        filters = VisitFilter(contact_uuid)
    rows, total = await service.list_page(caller.tx, caller.account, params, filters)
    return visits_answer(rows, params.meta(total))


@router.post(
    "/batch",
    dependencies=[Idempotent],
    response_model=VisitBatchResponse,
    responses=write_error_responses(),
    summary="Batch create Visits",
    operation_id="batchCreateVisits",
)
async def create_visits(body: VisitBatch, request: Request) -> Response:
    """Up to 1,000 visits, each created, answered as a retry (the stored visit with its external_id,
    when every field given equals it), or refused in its place; the answer keeps the request's order.
    An Idempotency-Key covers the whole batch."""
    caller = Caller.of(request)
    outcomes = await service.create_batch(caller.tx, caller.account, body.visits)
    data, counts = [], {"created": 0, "retried": 0, "failed": 0}
    for index, outcome in enumerate(outcomes):
        if outcome.error is not None:
            error = outcome.error
            shown = error_body(error.status_code, error.code, error.message, error.errors)
            data.append({"index": index, "status": error.status_code, "data": None, "error": shown})
            counts["failed"] += 1
        else:
            assert outcome.visit is not None  # no error: the visit stored
            data.append({"index": index, "status": 201 if outcome.created else 200,
                         "data": visit_fields(outcome.visit), "error": None})
            counts["created" if outcome.created else "retried"] += 1
    if metrics.current is not None:
        for name, count in counts.items():
            metrics.current.imported_visits.labels(name).inc(count)
    return json_answer({"data": data, "meta": counts})


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={**file_responses("visits", "visit"), **error_responses()},
    summary="Export Visits",
    operation_id="exportVisits",
    openapi_extra={"parameters": filter_parameters(ordered=False)},  # in the order stored
)
async def export_visits(
    request: Request,
    format: Annotated[Literal[EXPORT_FORMATS], Query(description="ndjson (the default) or csv")] = "ndjson",  # type: ignore[valid-type]
    contact_uuid: Annotated[UUID | None, Query(description="A contact's UUID to filter the Visits by")] = None,
) -> Response:
    """Every visit that passes the list's filters, in the order they were stored, streamed a chunk at
    a time: flat rows (uuid, contact_uuid, contact_email, shop_uuid, external_id, source, starts_at,
    ends_at, created_at, updated_at) that `footfall visits import` reads back."""
    caller = Caller.of(request)
    filters = read_filters(request.query_params, contact_uuid)
    database, account_id = request.app.state.database, caller.account.id

    async def body() -> AsyncIterator[bytes]:
        async for chunk in export.export(database, account_id, filters, format):
            yield chunk.data

    return file_response(body(), format, "visits")


@router.get(
    "/changes", response_model=ChangesResponse, responses=error_responses(), summary="Changes since a cursor",
    operation_id="listVisitChanges",
)
async def visit_changes(
    request: Request,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous call; none to start")] = None,
    limit: limit_query(1000) = 100,  # type: ignore[valid-type]  # an Annotated a function builds
) -> Response:
    """Every visit created, updated or deleted after the cursor, oldest change first: a visit as it
    is now (with updated_at), or a deleted one's tombstone (uuid, external_id, deleted_at). A visit
    shows once, at its latest change; a change passed is never shown again."""
    caller = Caller.of(request)
    rows, next_cursor = await service.changes(caller.tx, caller.account, cursor, limit)
    return changes_answer(rows, next_cursor, has_more=limit > 0 and len(rows) == limit)


@router.get(
    "/{uuid}", response_model=VisitResponse, responses=error_responses(VisitNotFound), summary="Show Visit",
    operation_id="getVisit",
)
async def get_visit(uuid: VisitUuid, request: Request) -> Response:
    """The visit with this UUID; 404 (91001) when the account has none."""
    caller = Caller.of(request)
    return visit_answer(await service.get(caller.tx, caller.account, uuid))


@router.post(
    "",
    dependencies=[Idempotent],
    response_model=VisitResponse,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": VisitResponse, "description": "A retry: the visit with this external_id, unchanged."},
        **write_error_responses(ContactNotFound, ShopNotFound, ExternalIdConflict),
    },
    summary="Create Visit",
    operation_id="createVisit",
)
async def create_visit(body: VisitCreate, request: Request) -> Response:
    """Creates a Visit. Sending an existing external_id with the same fields answers the stored visit (200)."""
    caller = Caller.of(request)
    row, created = await service.create(caller.tx, caller.account, body)
    return visit_answer(row, status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@router.put(
    "/{uuid}",
    dependencies=[Idempotent],
    response_model=VisitResponse,
    responses=write_error_responses(VisitNotFound, ExternalIdConflict),
    summary="Update Visit",
    operation_id="updateVisit",
)
async def update_visit(uuid: VisitUuid, body: VisitUpdate, request: Request) -> Response:
    """Updates the attributes of a Visit: only the fields sent change, and null clears one. Shop and
    contact cannot be updated."""
    caller = Caller.of(request)
    return visit_answer(await service.update(caller.tx, caller.account, uuid, body))


@router.delete(
    "/{uuid}",
    dependencies=[Idempotent],
    response_model=DeletedResponse,
    responses=write_error_responses(VisitNotFound),
    summary="Delete Visit",
    operation_id="deleteVisit",
)
async def delete_visit(uuid: VisitUuid, request: Request) -> DeletedResponse:
    """Deletes the visit (its tombstone stays in the changes feed) and sends visit_deleted. Its
    external_id is free again: a later create with it makes a new visit."""
    caller = Caller.of(request)
    await service.delete(caller.tx, caller.account, uuid)
    return DeletedResponse()
