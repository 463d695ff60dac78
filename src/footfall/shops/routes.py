from uuid import UUID

from fastapi import APIRouter

from footfall.errors import ShopNotFound, error_responses
from footfall.kit.dependencies import ApiRoute, CurrentAccount, Session
from footfall.shops import service
from footfall.shops.schemas import ShopListResponse, ShopOut, ShopResponse

router = APIRouter(prefix="/shops", tags=["shops"], route_class=ApiRoute)


@router.get("", response_model=ShopListResponse, responses=error_responses(), summary="List Shops")
async def list_shops(session: Session, account: CurrentAccount) -> ShopListResponse:
    """Every shop of the account, by name. Leat's shop list is not paginated, and neither is this one."""
    shops = await service.list_all(session, account)
    return ShopListResponse(data=[ShopOut.model_validate(shop) for shop in shops])


@router.get("/{uuid}", response_model=ShopResponse, responses=error_responses(ShopNotFound), summary="Show Shop")
async def get_shop(uuid: UUID, session: Session, account: CurrentAccount) -> ShopResponse:
    return ShopResponse(data=ShopOut.model_validate(await service.get(session, account, uuid)))
