import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from footfall.contacts.schemas import ContactUuid
from footfall.errors import ContactNotFound, RuleNotFound, ShopNotFound, error_responses, write_error_responses
from footfall.http.routing import ApiRoute, Caller, Idempotent
from footfall.kit.pagination import PageParams, page_params
from footfall.kit.types import DeletedResponse
from footfall.rules import service
from footfall.rules.repository import Rule
from footfall.rules.schemas import (
    RuleCreate,
    RuleListResponse,
    RuleOut,
    RuleProgressOut,
    RuleProgressResponse,
    RuleResponse,
    RuleUpdate,
    RuleUuid,
)

router = APIRouter(prefix="/visit-rules", tags=["visit rules"], route_class=ApiRoute)
progress_router = APIRouter(prefix="/contacts", tags=["visit rules"], route_class=ApiRoute)


def rule_out(rule: Rule) -> RuleOut:
    return RuleOut(
        uuid=rule.uuid, name=rule.name, kind=rule.kind, every=rule.every,
        at=None if rule.at is None else json.loads(rule.at), count=rule.needed, within_days=rule.within_days,
        after_days=rule.after_days, min_visits=rule.min_visits, shop_uuid=rule.shop_uuid, source=rule.source,
        status=rule.status, created_at=rule.created_at,
    )


@router.get(
    "", response_model=RuleListResponse, responses=error_responses(), summary="List Visit Rules",
    operation_id="listVisitRules",
)
async def list_rules(
    request: Request, params: Annotated[PageParams, Depends(page_params(max_limit=100))]
) -> RuleListResponse:
    """The account's visit rules, newest first, a page at a time."""
    caller = Caller.of(request)
    rules, total = await service.list_page(caller.tx, caller.account, params)
    return RuleListResponse(data=[rule_out(rule) for rule in rules], meta=params.meta(total))


@router.post(
    "",
    dependencies=[Idempotent],
    response_model=RuleResponse,
    status_code=status.HTTP_201_CREATED,
    responses=write_error_responses(ShopNotFound),
    summary="Create Visit Rule",
    operation_id="createVisitRule",
)
async def create_rule(body: RuleCreate, request: Request) -> RuleResponse:
    """A milestone (`every` or `at`), frequency (`count` within `within_days`) or lapse (`after_days`,
    `min_visits`) rule, optionally of one shop's or one source's visits. It counts from now on: counts
    a contact reached before it was made never fire."""
    caller = Caller.of(request)
    return RuleResponse(data=rule_out(await service.create(caller.tx, caller.account, body)))


@router.get(
    "/{uuid}", response_model=RuleResponse, responses=error_responses(RuleNotFound), summary="Show Visit Rule",
    operation_id="getVisitRule",
)
async def get_rule(uuid: RuleUuid, request: Request) -> RuleResponse:
    """The rule with this UUID; 404 (91301) when the account has none."""
    caller = Caller.of(request)
    return RuleResponse(data=rule_out(await service.get(caller.tx, caller.account, uuid)))


@router.put(
    "/{uuid}",
    dependencies=[Idempotent],
    response_model=RuleResponse,
    responses=write_error_responses(RuleNotFound),
    summary="Update Visit Rule",
    operation_id="updateVisitRule",
)
async def update_rule(uuid: RuleUuid, body: RuleUpdate, request: Request) -> RuleResponse:
    """`name` and `status` (ACTIVE or INACTIVE); the rule's numbers, shop and source cannot change.
    An INACTIVE rule fires nothing, and does not catch up once ACTIVE again."""
    caller = Caller.of(request)
    return RuleResponse(data=rule_out(await service.update(caller.tx, caller.account, uuid, body)))


@router.delete(
    "/{uuid}",
    response_model=DeletedResponse,
    responses=write_error_responses(RuleNotFound),
    summary="Delete Visit Rule",
    operation_id="deleteVisitRule",
)
async def delete_rule(uuid: RuleUuid, request: Request) -> DeletedResponse:
    """Deletes the rule and what it recorded of each contact."""
    caller = Caller.of(request)
    await service.delete(caller.tx, caller.account, uuid)
    return DeletedResponse()


@progress_router.get(
    "/{uuid}/visit-rules",
    response_model=RuleProgressResponse,
    responses=error_responses(ContactNotFound),
    summary="Show Contact Visit Rule Progress",
    operation_id="getContactRuleProgress",
)
async def contact_progress(uuid: ContactUuid, request: Request) -> RuleProgressResponse:
    """The contact's standing with each of the account's rules: its qualifying visits, the counts a
    rule fired at, the next count a milestone fires at, and whether it has lapsed."""
    caller = Caller.of(request)
    rows = await service.progress(caller.tx, caller.account, uuid)
    return RuleProgressResponse(data=[
        RuleProgressOut(
            rule=rule_out(row.rule), count=row.total, reached=reached,
            next_at=service.next_at(row.rule, row.total, reached),
            lapsed=(row.lapsed_at is not None) if row.rule.kind == "lapse" else None,
            last_visit_at=row.last_visit_at,
        )
        for row, reached in rows
    ])
