from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Request

from footfall.errors import ShopNotFound, error_responses
from footfall.http.routing import ApiRoute, Caller
from footfall.shops import service
from footfall.shops.schemas import ShopListResponse, ShopOut, ShopResponse

router = APIRouter(prefix="/shops", tags=["shops"], route_class=ApiRoute)

ShopUuid = Annotated[UUID, Path(description="The shop's UUID")]


@router.get(
    "", response_model=ShopListResponse, responses=error_responses(), summary="List Shops", operation_id="listShops"
)
async def list_shops(request: Request) -> ShopListResponse:
    """Every shop of the account, by name. Leat's shop list is not paginated, and neither is this one."""
    caller = Caller.of(request)
    shops = await service.list_all(caller.tx, caller.account)
    return ShopListResponse(data=[ShopOut.model_validate(shop) for shop in shops])


@router.get(
    "/{uuid}", response_model=ShopResponse, responses=error_responses(ShopNotFound), summary="Show Shop",
    operation_id="getShop",
)
async def get_shop(uuid: ShopUuid, request: Request) -> ShopResponse:
    """The shop with this UUID; 404 (1008) when the account has none."""
    caller = Caller.of(request)
    return ShopResponse(data=ShopOut.model_validate(await service.get(caller.tx, caller.account, uuid)))
