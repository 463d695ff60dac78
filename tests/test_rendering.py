"""What kit.rendering writes is what the response models document, byte for byte."""

from datetime import UTC, datetime
from uuid import UUID

from asyncpg.pgproto.pgproto import UUID as AsyncpgUUID

from footfall.kit.pagination import PageMeta
from footfall.visits.repository import Change, VisitRow
from footfall.visits.schemas import (
    ChangedVisitOut,
    ChangesMeta,
    ChangesResponse,
    TombstoneOut,
    VisitListResponse,
    VisitOut,
    VisitResponse,
    change_fields,
    changes_answer,
    visit_answer,
    visit_fields,
    visits_answer,
)

ROWS = [
    VisitRow(
        id=1, uuid=UUID("87824d97-a0a0-4764-9cd2-9df88579fd47"), contact_id=2, shop_id=3,
        contact_uuid=AsyncpgUUID("6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92"), contact_email="spongebob@bikinibottom.sea",
        external_id="till-7/000123", source="Café «Kiosk» 🦀", starts_at=datetime(2024, 5, 1, 20, tzinfo=UTC),
        ends_at=datetime(2024, 5, 1, 22, 30, 5, tzinfo=UTC),
        created_at=datetime(2024, 5, 1, 20, 0, 1, 654321, tzinfo=UTC),
    ),
    VisitRow(
        id=4, uuid=UUID("2d3df56b-d10e-465f-a6a7-fd258c536f6b"), contact_id=2, shop_id=3,
        contact_uuid=UUID("6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92"), contact_email="patrick@bikinibottom.sea",
        external_id=None, source=None, starts_at=datetime(1, 1, 1, tzinfo=UTC), ends_at=None,
        created_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    ),
]


def _documented(row: VisitRow) -> VisitOut:
    return VisitOut.model_validate(visit_fields(row))


def test_a_visit_renders_as_its_response_model_does():
    for row in ROWS:
        assert visit_answer(row).body == VisitResponse(data=_documented(row)).model_dump_json().encode()
        assert visit_answer(row, 201).status_code == 201


def test_a_page_renders_as_its_response_model_does():
    for meta in (PageMeta(current_page=1, last_page=1, per_page=30, total=2),
                 PageMeta(current_page=10**30, last_page=1, per_page=30, total=2)):
        rows = ROWS if meta.current_page == 1 else []
        expected = VisitListResponse(data=[_documented(row) for row in rows], meta=meta).model_dump_json().encode()
        assert visits_answer(rows, meta).body == expected


def test_a_change_renders_as_its_response_model_does():
    rows = [Change(1, n, row.uuid, row.external_id, None, row.contact_uuid, row.contact_email, row.source,
                   row.starts_at, row.ends_at, row.created_at, datetime(2024, 5, 2, 8, n, tzinfo=UTC))
            for n, row in enumerate(ROWS)]
    rows.append(Change(2, 0, UUID("2d3df56b-d10e-465f-a6a7-fd258c536f6c"), "till/é", datetime(2024, 6, 1, tzinfo=UTC),
                       *([None] * 7)))
    expected = ChangesResponse(
        data=[ChangedVisitOut.model_validate(change_fields(row)) if row.deleted_at is None
              else TombstoneOut.model_validate(change_fields(row)) for row in rows],
        meta=ChangesMeta(next_cursor="abc", has_more=False),
    )
    assert changes_answer(rows, "abc", False).body == expected.model_dump_json().encode()
