"""A page and its total agree even when a write lands between the statements that read them: the
list reads its total, then the page cut from it, and reads both again in one snapshot when the page's
statement saw another total. Through the service, with a visit created (and committed) by HTTP right
after the list's first statement."""

from typing import Any
from uuid import UUID

import pytest

from footfall.accounts import service as accounts
from footfall.kit.pagination import PageParams
from footfall.visits import service as visits
from footfall.visits.repository import VisitFilter


class InterruptedTx:
    """Runs on another Tx; after its first statement, runs `meanwhile` (once)."""

    def __init__(self, inner: Any, meanwhile: Any) -> None:
        self.inner, self.meanwhile, self.dialect = inner, meanwhile, inner.dialect

    async def _after_first(self) -> None:
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()

    async def fetch(self, statement: Any, params: Any = None) -> Any:
        rows = await self.inner.fetch(statement, params)
        await self._after_first()
        return rows

    async def fetchrow(self, statement: Any, params: Any = None) -> Any:
        rows = await self.fetch(statement, params)
        return rows[0] if rows else None

    async def fetchval(self, statement: Any, params: Any = None) -> Any:
        row = await self.fetchrow(statement, params)
        return None if row is None else row[0]

    async def snapshot(self) -> None:
        await self.inner.snapshot()


@pytest.mark.parametrize("filtered", [False, True], ids=["leats", "filtered"])
async def test_a_page_and_its_total_agree_across_a_write_between_them(app, client, tenant, filtered):
    """A visit is deleted between the list's statements: the answer must be the page as it was before,
    or as it is after, never rows of one with the total of the other. (Which visit: the one whose
    delete moved the rows each way of reading the page used to read.)"""
    made = []
    for n in range(5):
        response = await client.post("/visits", json={"contact_uuid": tenant.contact_uuid,
                                                      "shop_uuid": tenant.shop_uuid, "source": f"s{n}"},
                                     headers=tenant.headers)
        assert response.status_code == 201
        made.append(response.json()["data"]["uuid"])
    query = {"limit": 2, "page": 2, **({"shop_uuid": tenant.shop_uuid} if filtered else {})}

    async def listed() -> tuple[int, list[str]]:
        page = (await client.get("/visits", params=query, headers=tenant.headers)).json()
        return page["meta"]["total"], [visit["uuid"] for visit in page["data"]]

    victim = made[-1] if filtered else made[0]  # the newest, or the oldest

    async def delete_the_victim() -> None:
        assert (await client.delete(f"/visits/{victim}", headers=tenant.headers)).status_code == 200

    before = await listed()
    # Page 2 of 2 a page: not page 1 (which is one statement), cut from the older end.
    filters = VisitFilter(shop_uuid=UUID(tenant.shop_uuid)) if filtered else VisitFilter()
    async with app.state.database.transaction(write=False) as inner:
        account = await accounts.get_account(inner, UUID(tenant.account_uuid))
        rows, total = await visits.list_page(InterruptedTx(inner, delete_the_victim), account, PageParams(2, 2),
                                             filters)
    after = await listed()

    assert before != after
    assert (total, [str(row.uuid) for row in rows]) in (before, after)
