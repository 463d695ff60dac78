"""The floor: the same FastAPI, pydantic models and uvicorn settings as `footfall serve`, answering
constant bodies of the same size through the same response models, with no database.

    python bench/floor.py --port 8100
"""

import argparse
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import uvicorn
from fastapi import FastAPI, Query

from footfall.cli import UVICORN_OPTIONS
from footfall.kit.pagination import PageMeta
from footfall.visits.schemas import VisitContact, VisitCreate, VisitListResponse, VisitOut, VisitResponse, VisitUpdate

VISIT = VisitOut(
    uuid=UUID("87824d97-a0a0-4764-9cd2-9df88579fd47"),
    contact=VisitContact(uuid=UUID("6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92"), email="c1234@bench.example"),
    external_id="bench-123456",
    source="Kiosk",
    starts_at=datetime(2024, 5, 1, 20, tzinfo=UTC),
    ends_at=datetime(2024, 5, 1, 20, 20, tzinfo=UTC),
    created_at=datetime(2024, 5, 1, 20, tzinfo=UTC),
)

app = FastAPI()


@app.get("/floor/visits/{uuid}", response_model=VisitResponse)
async def show(uuid: UUID) -> VisitResponse:
    return VisitResponse(data=VISIT)


@app.get("/floor/visits", response_model=VisitListResponse)
async def list_visits(limit: Annotated[int, Query(ge=0, le=500)] = 30, page: int = 1) -> VisitListResponse:
    return VisitListResponse(
        data=[VISIT] * limit, meta=PageMeta(current_page=page, last_page=1, per_page=limit, total=limit)
    )


@app.post("/floor/visits", response_model=VisitResponse, status_code=201)
async def create(body: VisitCreate) -> VisitResponse:
    return VisitResponse(data=VISIT)


@app.put("/floor/visits/{uuid}", response_model=VisitResponse)
async def update(uuid: UUID, body: VisitUpdate) -> VisitResponse:
    return VisitResponse(data=VISIT)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, **UVICORN_OPTIONS)
