"""/openapi.json documents every route, its parameters, bodies and error answers; /docs renders it."""

import re

import httpx
import pytest

from footfall.app import API_PREFIX


async def _get(app, path):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://footfall.test") as client:
        return await client.get(path)


async def test_openapi_documents_every_route_with_leats_error_schema(app):
    schema = (await _get(app, "/openapi.json")).json()
    operations = {
        (method.upper(), path.removeprefix(API_PREFIX)): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    assert set(operations) == {
        ("GET", "/visits"),
        ("POST", "/visits"),
        ("GET", "/visits/{uuid}"),
        ("PUT", "/visits/{uuid}"),
        ("POST", "/visits/batch"),
        ("GET", "/shops"),
        ("GET", "/shops/{uuid}"),
        ("GET", "/visits/changes"),
        ("GET", "/visits/export"),
        ("GET", "/visits/stats"),
        ("DELETE", "/visits/{uuid}"),
        ("GET", "/contacts"),
        ("POST", "/contacts"),
        ("GET", "/contacts/{uuid}"),
        ("GET", "/contacts/find-one-by"),
        ("GET", "/contacts/find-or-create"),
        ("POST", "/contacts/async"),
        ("GET", "/contacts/find-or-create/async"),
        ("POST", "/contacts/anonymous"),
        ("PUT", "/contacts/{uuid}/claim"),
        ("DELETE", "/contacts/{uuid}"),
        ("POST", "/contacts/{uuid}/delete"),
        ("GET", "/webhook-subscriptions"),
        ("POST", "/webhook-subscriptions"),
        ("GET", "/webhook-subscriptions/{uuid}"),
        ("PUT", "/webhook-subscriptions/{uuid}"),
        ("DELETE", "/webhook-subscriptions/{uuid}"),
        ("GET", "/webhook-subscriptions/{uuid}/deliveries"),
        ("POST", "/webhook-subscriptions/{uuid}/deliveries/{delivery_id}/retry"),
        ("GET", "/healthz"),
    }
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for (method, path), operation in operations.items():
        if path == "/healthz":
            continue
        assert operation["security"] == [{"HTTPBearer": []}]
        for status in ("401", "422", "500"):
            assert operation["responses"][status]["content"]["application/json"]["schema"] == error_ref
        if "{uuid}" in path:
            assert operation["responses"]["404"]["content"]["application/json"]["schema"] == error_ref
        if method in ("POST", "PUT") and not path.endswith("/retry"):
            content = operation["requestBody"]["content"]
            assert set(content) == {"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}
    assert set(schema["components"]["schemas"]["ErrorBody"]["required"]) == {"status_code", "code", "message"}
    list_params = {p["name"] for p in operations[("GET", "/visits")]["parameters"]}
    ranges = {f"{column}[{op}]" for column in ("created_at", "starts_at", "updated_at")
              for op in ("gte", "gt", "lte", "lt")}
    assert list_params == {"limit", "page", "contact_uuid", "shop_uuid", "source", "external_id", "sort", *ranges}
    create = schema["components"]["schemas"]["VisitCreate"]
    assert set(create["required"]) == {"contact_uuid", "shop_uuid"}
    assert set(create["properties"]) == {"contact_uuid", "shop_uuid", "external_id", "source", "starts_at", "ends_at"}
    batch_items = schema["components"]["schemas"]["VisitBatch"]["properties"]["visits"]
    assert batch_items["maxItems"] == 1000
    assert {"contact_uuid", "contact_email", "shop_uuid"} <= set(batch_items["items"]["properties"])
    batch_answer = schema["components"]["schemas"]["BatchOutcome"]["properties"]
    assert set(batch_answer) == {"index", "status", "data", "error"}
    update = schema["components"]["schemas"]["VisitUpdate"]
    assert set(update["properties"]) == {"external_id", "source", "starts_at", "ends_at"}


@pytest.mark.parametrize("page, script", [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
async def test_docs_load_every_asset_from_footfall(app, page, script):
    """Swagger UI and ReDoc render offline: every script, style sheet and icon their pages name is
    served by Footfall itself (a browser test checks that nothing else is asked for)."""
    response = await _get(app, page)
    assert response.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]*)"', response.text)
    assert any(asset.endswith(script) for asset in assets)
    assert "http://" not in response.text and "https://" not in response.text
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        loaded = await _get(app, asset)
        assert loaded.status_code == 200 and len(loaded.content) > 100, asset
    assert "/openapi.json" in response.text
