"""Laravel-style page meta, as Leat's lists answer it."""

import math
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel


class PageMeta(BaseModel):
    current_page: int
    last_page: int
    per_page: int
    total: int


class PageParams:
    """limit and page query parameters; one class per list, since each has its own limits."""

    def __init__(self, limit: int, page: int) -> None:
        self.limit = limit
        self.page = page

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def reaches_rows(self, total: int) -> bool:
        """False when the page lies wholly past the end (or limit is 0): no need to read rows."""
        return self.limit > 0 and self.offset < total

    def meta(self, total: int) -> PageMeta:
        last_page = max(1, math.ceil(total / self.limit)) if self.limit else 1
        return PageMeta(current_page=self.page, last_page=last_page, per_page=self.limit, total=total)


def limit_query(max_limit: int) -> Any:
    """The limit query parameter of a list: 0..max_limit items per page."""
    return Annotated[int, Query(ge=0, le=max_limit, description=f"Items per page (0 to {max_limit}).")]


PageQuery = Annotated[int, Query(ge=1, description="Page number, from 1.")]


def page_params(*, max_limit: int, default_limit: int = 30) -> Callable[[int, int], Coroutine[Any, Any, PageParams]]:
    """A FastAPI dependency reading limit (0..max_limit) and page (>= 1). The visits list, a hot
    path, takes limit_query and PageQuery as its own parameters: a dependency costs more there."""

    async def dependency(
        limit: limit_query(max_limit) = default_limit,  # type: ignore[valid-type]  # an Annotated built at run time
        page: PageQuery = 1,
    ) -> PageParams:
        return PageParams(limit, page)

    return dependency
