from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response, status

from footfall.errors import (
    ContactNotFound,
    ExternalIdConflict,
    ShopNotFound,
    VisitNotFound,
    error_responses,
    write_error_responses,
)
from footfall.kit.dependencies import CurrentAccount, DriverRoute, Idempotent, Transaction
from footfall.kit.pagination import PageParams, page_params
from footfall.visits import service
from footfall.visits.schemas import (
    VisitCreate,
    VisitListResponse,
    VisitOut,
    VisitResponse,
    VisitUpdate,
)

router = APIRouter(prefix="/visits", tags=["visits"], route_class=DriverRoute)


@router.get("", response_model=VisitListResponse, responses=error_responses(), summary="List Visits")
async def list_visits(
    tx: Transaction,
    account: CurrentAccount,
    params: Annotated[PageParams, Depends(page_params(max_limit=500))],
    contact_uuid: Annotated[UUID | None, Query(description="A contact's UUID to filter the Visits by")] = None,
) -> VisitListResponse:
    """Newest created_at first."""
    rows, total = await service.list_page(tx, account, params, contact_uuid)
    return VisitListResponse(data=[VisitOut.from_row(row) for row in rows], meta=params.meta(total))


@router.get("/{uuid}", response_model=VisitResponse, responses=error_responses(VisitNotFound), summary="Show Visit")
async def get_visit(uuid: UUID, tx: Transaction, account: CurrentAccount) -> VisitResponse:
    return VisitResponse(data=VisitOut.from_row(await service.get(tx, account, uuid)))


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
)
async def create_visit(body: VisitCreate, tx: Transaction, account: CurrentAccount, response: Response) -> VisitResponse:
    """Creates a Visit. Sending an existing external_id with the same fields answers the stored visit (200)."""
    row, created = await service.create(tx, account, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return VisitResponse(data=VisitOut.from_row(row))


@router.put(
    "/{uuid}",
    dependencies=[Idempotent],
    response_model=VisitResponse,
    responses=write_error_responses(VisitNotFound, ExternalIdConflict),
    summary="Update Visit",
)
async def update_visit(uuid: UUID, body: VisitUpdate, tx: Transaction, account: CurrentAccount) -> VisitResponse:
    """Updates the attributes of a Visit. Shop and contact cannot be updated."""
    return VisitResponse(data=VisitOut.from_row(await service.update(tx, account, uuid, body)))
