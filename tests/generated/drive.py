"""Drives a live Footfall through a client openapi-python-client generated from its /openapi.json
(the package footfall_api, on PYTHONPATH): python drive.py BASE_URL TOKEN. Prints "ok"; an assertion
that fails exits 1 with its traceback. Run by tests/test_generated_clients.py."""

import sys
import time
from datetime import UTC, datetime

from footfall_api import AuthenticatedClient
from footfall_api.api.contacts import create_contact
from footfall_api.api.shops import list_shops
from footfall_api.api.visits import (
    create_visit,
    delete_visit,
    export_visits,
    get_visit,
    get_visit_stats,
    list_visits,
    update_visit,
)
from footfall_api.models import (
    ContactCreate,
    ContactResponse,
    DeletedResponse,
    ErrorBody,
    ExportVisitsFormat,
    GetVisitStatsInterval,
    ListVisitsSort,
    ShopListResponse,
    StatsResponse,
    VisitCreate,
    VisitListResponse,
    VisitResponse,
    VisitUpdate,
)


def main(base_url: str, token: str) -> None:
    client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)
    run = f"{time.time_ns():x}"

    shops = list_shops.sync(client=client)
    assert isinstance(shops, ShopListResponse) and shops.data, shops
    shop = shops.data[0]

    contact = create_contact.sync(client=client, body=ContactCreate(email=f"py-{run}@example.com"))
    assert isinstance(contact, ContactResponse), contact
    contact_uuid = contact.data.uuid

    created = create_visit.sync_detailed(client=client, body=VisitCreate(
        contact_uuid=contact_uuid, shop_uuid=shop.uuid, external_id=f"py-{run}", source="python",
        starts_at=datetime(2024, 5, 1, 10, tzinfo=UTC), ends_at=datetime(2024, 5, 1, 10, 30, tzinfo=UTC)))
    assert created.status_code == 201 and isinstance(created.parsed, VisitResponse), created
    assert created.headers.get("X-Request-Id"), created.headers
    visit = created.parsed.data
    assert visit.source == "python" and visit.contact.uuid == contact_uuid and created.parsed.meta == []

    shown = get_visit.sync(visit.uuid, client=client)
    assert isinstance(shown, VisitResponse) and shown.data.external_id == f"py-{run}", shown

    listed = list_visits.sync(client=client, contact_uuid=contact_uuid, limit=10, sort=ListVisitsSort("-starts_at"))
    assert isinstance(listed, VisitListResponse) and listed.meta.total == 1, listed
    assert listed.data[0].uuid == visit.uuid

    # None clears a field: sent as JSON null, never as the text "None".
    updated = update_visit.sync(visit.uuid, client=client, body=VisitUpdate(source=None, ends_at=None))
    assert isinstance(updated, VisitResponse), updated
    assert updated.data.source is None and updated.data.ends_at is None, updated
    assert updated.data.external_id == f"py-{run}"  # not sent, kept
    shown = get_visit.sync(visit.uuid, client=client)
    assert isinstance(shown, VisitResponse) and shown.data.source is None, shown

    stats = get_visit_stats.sync(client=client, contact_uuid=contact_uuid, interval=GetVisitStatsInterval.DAY)
    assert isinstance(stats, StatsResponse) and sum(bucket.visits for bucket in stats.data) == 1, stats

    csv = export_visits.sync(client=client, contact_uuid=contact_uuid, format_=ExportVisitsFormat.CSV)
    assert isinstance(csv, str) and csv.startswith("uuid,") and str(visit.uuid) in csv, csv
    ndjson = export_visits.sync(client=client, contact_uuid=contact_uuid)
    assert isinstance(ndjson, str) and ndjson.count("\n") == 1 and str(visit.uuid) in ndjson, ndjson

    deleted = delete_visit.sync(visit.uuid, client=client)
    assert isinstance(deleted, DeletedResponse), deleted

    missing = get_visit.sync_detailed(visit.uuid, client=client)
    assert missing.status_code == 404 and isinstance(missing.parsed, ErrorBody), missing
    assert missing.parsed.code == 91001

    invalid = list_visits.sync_detailed(client=client, limit=501)
    assert invalid.status_code == 422 and isinstance(invalid.parsed, ErrorBody), invalid
    assert invalid.parsed.code == 1003 and "limit" in invalid.parsed.errors.to_dict(), invalid.parsed

    print("ok")


if __name__ == "__main__":
    main(*sys.argv[1:3])
