"""/openapi.json documents every route, its parameters, bodies, answers and their headers, in a shape client
generators read well (tests/test_generated_clients.py runs three); /docs renders it."""

import json
import re
from uuid import uuid4

import httpx
import pytest

from footfall.app import API_PREFIX
from tests.conftest import make_tenant
from tests.test_limits import app_client, fresh_window


async def _get(app, path):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://footfall.test") as client:
        return await client.get(path)


# Each operation's operationId: the names generated clients give their methods, so they never change.
OPERATION_IDS = {
    ("GET", "/visits"): "listVisits",
    ("POST", "/visits"): "createVisit",
    ("GET", "/visits/{uuid}"): "getVisit",
    ("PUT", "/visits/{uuid}"): "updateVisit",
    ("DELETE", "/visits/{uuid}"): "deleteVisit",
    ("POST", "/visits/batch"): "batchCreateVisits",
    ("GET", "/visits/changes"): "listVisitChanges",
    ("GET", "/visits/export"): "exportVisits",
    ("GET", "/visits/stats"): "getVisitStats",
    ("GET", "/shops"): "listShops",
    ("GET", "/shops/{uuid}"): "getShop",
    ("GET", "/contacts"): "listContacts",
    ("POST", "/contacts"): "createContact",
    ("GET", "/contacts/{uuid}"): "getContact",
    ("GET", "/contacts/export"): "exportContacts",
    ("GET", "/contacts/find-one-by"): "findContactByEmail",
    ("GET", "/contacts/find-or-create"): "findOrCreateContact",
    ("POST", "/contacts/async"): "createContactAsync",
    ("GET", "/contacts/find-or-create/async"): "findOrCreateContactAsync",
    ("POST", "/contacts/anonymous"): "createAnonymousContact",
    ("PUT", "/contacts/{uuid}/claim"): "claimContact",
    ("DELETE", "/contacts/{uuid}"): "deleteContact",
    ("POST", "/contacts/{uuid}/delete"): "deleteContactViaPost",
    ("GET", "/webhook-subscriptions"): "listWebhookSubscriptions",
    ("POST", "/webhook-subscriptions"): "createWebhookSubscription",
    ("GET", "/webhook-subscriptions/{uuid}"): "getWebhookSubscription",
    ("PUT", "/webhook-subscriptions/{uuid}"): "updateWebhookSubscription",
    ("DELETE", "/webhook-subscriptions/{uuid}"): "deleteWebhookSubscription",
    ("GET", "/webhook-subscriptions/{uuid}/deliveries"): "listWebhookDeliveries",
    ("POST", "/webhook-subscriptions/{uuid}/deliveries/{delivery_id}/retry"): "retryWebhookDelivery",
    ("GET", "/visit-rules"): "listVisitRules",
    ("POST", "/visit-rules"): "createVisitRule",
    ("GET", "/visit-rules/{uuid}"): "getVisitRule",
    ("PUT", "/visit-rules/{uuid}"): "updateVisitRule",
    ("DELETE", "/visit-rules/{uuid}"): "deleteVisitRule",
    ("GET", "/contacts/{uuid}/visit-rules"): "getContactRuleProgress",
    ("GET", "/healthz"): "getHealth",
}
# Response fields sent only sometimes, and so not required: every other field of an answer is.
SOMETIMES_SENT = {("ErrorBody", "errors"), ("StatsBucket", "shop_uuid"), ("StatsBucket", "source"),
                  ("Health", "replicas")}


def _operations(schema):
    return {
        (method.upper(), path.removeprefix(API_PREFIX)): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }


async def test_openapi_documents_every_route_with_leats_error_schema(app):
    schema = (await _get(app, "/openapi.json")).json()
    operations = _operations(schema)
    assert set(operations) == set(OPERATION_IDS)
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    assert schema["security"] == [{"HTTPBearer": []}]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for (_, path), operation in operations.items():
        if path == "/healthz":
            assert operation["security"] == []  # no token
            continue
        assert operation["security"] == [{"HTTPBearer": []}]
        for status in ("401", "422", "429", "500", "503"):
            assert operation["responses"][status]["content"]["application/json"]["schema"] == error_ref
        if "{uuid}" in path:
            assert operation["responses"]["404"]["content"]["application/json"]["schema"] == error_ref
    assert set(schema["components"]["schemas"]["ErrorBody"]["required"]) == {"status_code", "code", "message"}
    list_params = {p["name"] for p in operations[("GET", "/visits")]["parameters"]}
    ranges = {f"{column}[{op}]" for column in ("created_at", "starts_at", "updated_at")
              for op in ("gte", "gt", "lte", "lt")}
    assert list_params == {"limit", "page", "contact_uuid", "shop_uuid", "source", "external_id", "sort", *ranges}
    for path in ("/visits/export", "/visits/stats"):  # each keeps an order of its own
        assert {p["name"] for p in operations[("GET", path)]["parameters"]} >= ranges - {"sort"}
        assert "sort" not in {p["name"] for p in operations[("GET", path)]["parameters"]}
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


async def test_bodies_are_documented_as_json_and_forms_in_words(app):
    """A generator offered the form encodings sends one (openapi-python-client sent multipart, and
    None as the text "None"): bodies are documented as JSON alone, and the forms Footfall also reads
    are told in each operation's description."""
    operations = _operations((await _get(app, "/openapi.json")).json())
    with_bodies = {key for key, operation in operations.items() if "requestBody" in operation}
    assert with_bodies == {key for key in OPERATION_IDS if key[0] in ("POST", "PUT") and not key[1].endswith("/retry")
                           } | {("DELETE", "/contacts/{uuid}")}
    for key in with_bodies:
        operation = operations[key]
        assert set(operation["requestBody"]["content"]) == {"application/json"}, key
        assert "application/x-www-form-urlencoded" in operation["description"], key
        assert "multipart/form-data" in operation["description"], key


async def test_operations_have_short_stable_unique_ids_and_every_text_a_client_shows(app):
    schema = (await _get(app, "/openapi.json")).json()
    operations = _operations(schema)
    assert {key: operation["operationId"] for key, operation in operations.items()} == OPERATION_IDS
    ids = list(OPERATION_IDS.values())
    assert len(set(ids)) == len(ids)
    for operation_id in ids:
        assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", operation_id) and len(operation_id) <= 32, operation_id
    for key, operation in operations.items():
        assert operation["summary"] and operation["description"], key
        for parameter in operation.get("parameters", []):
            assert parameter.get("description"), (key, parameter["name"])
    assert schema["servers"] == [{"url": "/", "description": "The Footfall server this document is served from"}]
    assert schema["info"]["license"] == {"name": "MIT", "identifier": "MIT"}
    assert {tag["name"] for tag in schema["tags"]} == {tag for op in operations.values() for tag in op["tags"]}


async def test_the_values_a_parameter_takes_are_an_enum(app):
    schema = (await _get(app, "/openapi.json")).json()
    operations = _operations(schema)

    def parameter(key, name):
        return next(p for p in operations[key]["parameters"] if p["name"] == name)["schema"]

    sorts = ["created_at", "-created_at", "starts_at", "-starts_at", "updated_at", "-updated_at"]
    assert parameter(("GET", "/visits"), "sort")["enum"] == sorts
    for key in (("DELETE", "/contacts/{uuid}"), ("POST", "/contacts/{uuid}/delete")):
        assert parameter(key, "type")["enum"] == ["DEFAULT", "GDPR"]
    assert schema["components"]["schemas"]["ContactDelete"]["properties"]["type"]["enum"] == ["DEFAULT", "GDPR"]
    assert parameter(("GET", "/visits/export"), "format")["enum"] == ["ndjson", "csv"]


async def test_the_export_is_documented_as_text(app):
    operations = _operations((await _get(app, "/openapi.json")).json())
    answer = operations[("GET", "/visits/export")]["responses"]["200"]
    assert answer["content"] == {"application/x-ndjson": {"schema": {"type": "string"}},
                                 "text/csv": {"schema": {"type": "string"}}}


async def test_every_field_an_answer_always_sends_is_required(app):
    schema = (await _get(app, "/openapi.json")).json()
    components = schema["components"]["schemas"]
    answers: set[str] = set()
    pending = [json.dumps(response.get("content", {})) for operation in _operations(schema).values()
               for response in operation["responses"].values()]
    while pending:  # every schema an answer reaches
        for name in re.findall(r'"#/components/schemas/([^"]+)"', pending.pop()):
            if name not in answers:
                answers.add(name)
                pending.append(json.dumps(components[name]))
    assert {"VisitResponse", "VisitOut", "DeletedResponse", "StatsBucket", "Health"} <= answers
    for name in answers:
        for field in components[name].get("properties", {}):
            required = field in components[name].get("required", [])
            assert required != ((name, field) in SOMETIMES_SENT), (name, field)


async def test_the_document_is_valid_openapi(app):
    validator = pytest.importorskip("openapi_spec_validator", reason="openapi-spec-validator is not installed")
    validator.validate((await _get(app, "/openapi.json")).json())


def _documented_headers(schema, method, path, status):
    response = schema["paths"][API_PREFIX + path][method.lower()]["responses"][str(status)]
    headers = {}
    for name, header in response.get("headers", {}).items():
        if "$ref" in header:
            header = schema["components"]["headers"][header["$ref"].rsplit("/", 1)[1]]
        headers[name.lower()] = header
    return headers


# What HTTP itself sends, documented by the content of each answer.
TRANSPORT_HEADERS = {"content-type", "content-length", "date", "server", "transfer-encoding"}


async def test_answers_carry_the_headers_documented_for_them(database_url):
    async with app_client(database_url, rate_limit=4) as (app, client):
        schema = (await _get(app, "/openapi.json")).json()
        tenant, other = await make_tenant(app), await make_tenant(app)
        body = {"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid}
        await fresh_window()
        keyed = {**tenant.headers, "Idempotency-Key": uuid4().hex}
        answers = [
            ("POST", "/visits", await client.post("/visits", json=body, headers=keyed)),
            ("POST", "/visits", await client.post("/visits", json=body, headers=keyed)),
            ("GET", "/visits/export", await client.get("/visits/export", headers=tenant.headers)),
            ("GET", "/visits/{uuid}", await client.get(f"/visits/{uuid4()}", headers=tenant.headers)),
            ("GET", "/visits", await client.get("/visits")),
        ]
        for _ in range(4):
            await client.get("/shops", headers=other.headers)
        answers.append(("GET", "/shops", await client.get("/shops", headers=other.headers)))
        assert [answer.status_code for *_, answer in answers] == [201, 201, 200, 404, 401, 429]
        assert answers[1][2].headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in answers[0][2].headers
        for method, path, answer in answers:
            documented = _documented_headers(schema, method, path, answer.status_code)
            sent = set(answer.headers) - TRANSPORT_HEADERS
            assert sent <= set(documented), (method, path, answer.status_code, sent - set(documented))
            required = {name for name, header in documented.items() if header.get("required")}
            assert required <= sent, (method, path, answer.status_code, required - sent)
            assert "x-request-id" in required
        # The rate limit's, with the limit on; Retry-After and X-RateLimit-Reset on the 429.
        assert {"ratelimit-limit", "x-ratelimit-remaining"} <= set(answers[0][2].headers)
        assert {"retry-after", "x-ratelimit-reset"} <= set(answers[-1][2].headers)


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
