from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from footfall.errors import error_responses
from footfall.http.routing import ApiRoute, Caller
from footfall.kit.rendering import json_answer
from footfall.stats import service
from footfall.stats.schemas import StatsResponse, read_zone, stats_fields
from footfall.visits.schemas import filter_parameters, read_filters

router = APIRouter(prefix="/visits", tags=["visits"], route_class=ApiRoute)


@router.get(
    "/stats",
    response_model=StatsResponse,
    responses=error_responses(),
    summary="Visit stats",
    operation_id="getVisitStats",
    openapi_extra={"parameters": filter_parameters(ordered=False)},
)
async def visit_stats(
    request: Request,
    interval: Annotated[
        Literal[service.INTERVALS],  # type: ignore[valid-type]
        Query(description="The bucket: hour, day, week (from Monday) or month"),
    ] = "day",
    group_by: Annotated[Literal[service.GROUPS] | None, Query(  # type: ignore[valid-type]
        description="A bucket per shop or per source as well")] = None,
    timezone: Annotated[str, Query(description="An IANA time zone name: where days, weeks and months begin")] = "UTC",
    contact_uuid: Annotated[UUID | None, Query(description="A contact's UUID to count the Visits of")] = None,
) -> Response:
    """Per bucket of the period: visits, unique contacts, new contacts (first visit to the account in
    the bucket), returning contacts and the median duration. The period is the starts_at range
    given (`starts_at[gte]`, `starts_at[lt]`, ...), or, where left open, runs from the first to the
    last visit that passes the filters; buckets without visits are there, with zeros."""
    caller = Caller.of(request)
    zone = read_zone(timezone)
    filters = read_filters(request.query_params, contact_uuid)
    stats = await service.visit_stats(caller.tx, caller.account, filters, interval, group_by, zone,
                                      request.app.state.stats_cache)
    return json_answer(stats_fields(stats, interval, zone, group_by))
