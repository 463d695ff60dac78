"""The floor: the same FastAPI and uvicorn settings as `footfall serve` (its request log line included),
answering constant bodies of Footfall's JSON through the cheapest response models that produce it:
uuid and time fields are plain strings, so nothing is converted per request. No database.

    python bench/floor.py --port 8100
"""

import argparse
from typing import Annotated

import uvicorn
from fastapi import FastAPI, Query
from pydantic import BaseModel

from footfall.cli import uvicorn_options
from footfall.config import Settings
from footfall.http.requestlog import RequestLogMiddleware
from footfall.kit.pagination import PageMeta
from footfall.visits.schemas import VisitCreate, VisitUpdate


class FloorContact(BaseModel):
    uuid: str
    email: str


class FloorVisit(BaseModel):
    uuid: str
    contact: FloorContact
    external_id: str | None
    source: str | None
    starts_at: str
    ends_at: str | None
    created_at: str


class FloorVisitResponse(BaseModel):
    data: FloorVisit
    meta: list[None] = []


class FloorVisitListResponse(BaseModel):
    data: list[FloorVisit]
    meta: PageMeta


VISIT = FloorVisit(
    uuid="87824d97-a0a0-4764-9cd2-9df88579fd47",
    contact=FloorContact(uuid="6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92", email="c1234@bench.example"),
    external_id="bench-123456",
    source="Kiosk",
    starts_at="2024-05-01T20:00:00+00:00",
    ends_at="2024-05-01T20:20:00+00:00",
    created_at="2024-05-01T20:00:00+00:00",
)

app = FastAPI()
app.add_middleware(RequestLogMiddleware, documented_paths=lambda: app.openapi()["paths"])


@app.get("/floor/visits/{uuid}", response_model=FloorVisitResponse)
async def show(uuid: str) -> FloorVisitResponse:
    return FloorVisitResponse(data=VISIT)


@app.get("/floor/visits", response_model=FloorVisitListResponse)
async def list_visits(limit: Annotated[int, Query(ge=0, le=500)] = 30, page: int = 1) -> FloorVisitListResponse:
    return FloorVisitListResponse(
        data=[VISIT] * limit, meta=PageMeta(current_page=page, last_page=1, per_page=limit, total=limit)
    )


@app.post("/floor/visits", response_model=FloorVisitResponse, status_code=201)
async def create(body: VisitCreate) -> FloorVisitResponse:
    return FloorVisitResponse(data=VISIT)


@app.put("/floor/visits/{uuid}", response_model=FloorVisitResponse)
async def update(uuid: str, body: VisitUpdate) -> FloorVisitResponse:
    return FloorVisitResponse(data=VISIT)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, **uvicorn_options(Settings()))
