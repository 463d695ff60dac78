"""multipart/form-data bodies, as Leat's own request collection sends creates and updates: read into
the same fields as JSON and urlencoded bodies, on every POST and PUT."""

import pytest

from tests.conftest import make_tenant
from tests.test_limits import app_client

# The boundaries curl writes (dashes and hex) and Guzzle writes (a bare uniqid()).
BOUNDARIES = ["------------------------d74496d66958873e", "6630b4d5a1f3e"]


def multipart(boundary: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]] | None = None):
    """A body and its Content-Type, written by hand so the boundary is the one given."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
        for name, value in fields.items()
    ]
    for name, (filename, content) in (files or {}).items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("boundary", BOUNDARIES)
async def test_a_visit_is_created_and_updated_from_multipart_bodies(client, tenant, boundary):
    body, content_type = multipart(boundary, {
        "contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, "source": "Café / web",
        "external_id": f"mp-{boundary[-4:]}", "starts_at": "2024-05-01 19:00", "ends_at": "",
    })
    headers = {**tenant.headers, "Content-Type": content_type}
    created = await client.post("/visits", content=body, headers=headers)
    assert created.status_code == 201, created.text
    visit = created.json()["data"]
    assert visit["source"] == "Café / web" and visit["starts_at"] == "2024-05-01T19:00:00+00:00"
    assert visit["ends_at"] is None  # an empty field is an absent value, as in the other encodings

    body, content_type = multipart(boundary, {"ends_at": "2024-05-01 19:30", "source": "Kiosk"})
    updated = await client.put(f"/visits/{visit['uuid']}", content=body,
                               headers={**tenant.headers, "Content-Type": content_type})
    assert updated.status_code == 200, updated.text
    assert updated.json()["data"]["ends_at"] == "2024-05-01T19:30:00+00:00"
    assert updated.json()["data"]["source"] == "Kiosk"


async def test_contacts_and_webhook_subscriptions_take_multipart_bodies_too(client, tenant):
    body, content_type = multipart(BOUNDARIES[0], {"email": "Multipart@Bikinibottom.sea"})
    response = await client.post("/contacts", content=body, headers={**tenant.headers, "Content-Type": content_type})
    assert response.status_code == 201 and response.json()["data"]["email"] == "multipart@bikinibottom.sea"
    body, content_type = multipart(BOUNDARIES[1], {"name": "hook", "event_type": "visit_created",
                                                   "url": "http://127.0.0.1:9/hook"})
    response = await client.post("/webhook-subscriptions", content=body,
                                 headers={**tenant.headers, "Content-Type": content_type})
    assert response.status_code == 201, response.text
    body, content_type = multipart(BOUNDARIES[1], {"status": "INACTIVE"})
    response = await client.put(f"/webhook-subscriptions/{response.json()['data']['uuid']}", content=body,
                                headers={**tenant.headers, "Content-Type": content_type})
    assert response.status_code == 200 and response.json()["data"]["status"] == "INACTIVE"


async def test_a_file_part_is_refused_on_its_field(client, tenant):
    body, content_type = multipart(BOUNDARIES[0], {"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid},
                                   files={"source": ("source.txt", b"Kiosk")})
    response = await client.post("/visits", content=body, headers={**tenant.headers, "Content-Type": content_type})
    assert response.status_code == 422
    assert response.json() == {"status_code": 422, "code": 1003, "message": "Invalid input.",
                               "errors": {"source": ["Must be a text field, not a file."]}}
    assert (await client.get("/visits", headers=tenant.headers)).json()["meta"]["total"] == 0


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=elsewhere"])
async def test_a_multipart_body_that_cannot_be_read_is_1003(client, tenant, content_type):
    body, _ = multipart(BOUNDARIES[0], {"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid})
    response = await client.post("/visits", content=body, headers={**tenant.headers, "Content-Type": content_type})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == 1003


async def test_a_multipart_body_over_the_limit_is_413_before_it_is_read_whole(database_url):
    async with app_client(database_url, max_body_bytes=1000) as (app, client):
        tenant = await make_tenant(app)
        body, content_type = multipart(BOUNDARIES[0], {
            "contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, "source": "x" * 2000})
        headers = {**tenant.headers, "Content-Type": content_type}
        response = await client.post("/visits", content=body, headers=headers)
        assert response.status_code == 413 and response.json()["code"] == 90413
        chunks_read = []

        async def stream():  # no Content-Length: chunked, and refused after the limit
            for n in range(100):
                chunks_read.append(n)
                yield body[:500]

        response = await client.post("/visits", content=stream(), headers=headers)
        assert response.status_code == 413 and len(chunks_read) < 100


def raw_multipart(boundary: str, fields: list[tuple[bytes, bytes]]) -> bytes:
    """A body of parts whose names and values are bytes as they are."""
    parts = [f"--{boundary}\r\n".encode() + b'Content-Disposition: form-data; name="' + name
             + b'"\r\n\r\n' + value + b"\r\n" for name, value in fields]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


@pytest.mark.parametrize("bad", [b"\xff\xfe", b"caf\xe9", b"\xed\xa0\x80", b"\xc0\x80"], ids=repr)
async def test_a_part_that_is_not_utf8_is_refused_on_its_field_never_stored(client, tenant, bad):
    body = raw_multipart(BOUNDARIES[0], [(b"contact_uuid", tenant.contact_uuid.encode()),
                                         (b"shop_uuid", tenant.shop_uuid.encode()), (b"source", bad)])
    headers = {**tenant.headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARIES[0]}"}
    response = await client.post("/visits", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json() == {"status_code": 422, "code": 1003, "message": "Invalid input.",
                               "errors": {"source": ["Must be text (UTF-8)."]}}
    # A part's name that is not UTF-8 is refused too, named with U+FFFD in place of its other bytes.
    body = raw_multipart(BOUNDARIES[0], [(b"contact_uuid", tenant.contact_uuid.encode()),
                                         (b"shop_uuid", tenant.shop_uuid.encode()), (b"sou" + bad + b"rce", b"web")])
    response = await client.post("/visits", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == {"sou" + bad.decode("utf-8", "replace") + "rce": ["Must be text (UTF-8)."]}
    assert (await client.get("/visits", headers=tenant.headers)).json()["meta"]["total"] == 0


@pytest.mark.parametrize("charset", ["iso-8859-1", "utf-16", "zlib", "idna", "no-such-charset"])
async def test_parts_are_read_as_utf8_whatever_charset_the_content_type_names(client, tenant, charset):
    # PHP reads no charset, and Leat stores only UTF-8: a body in another one is refused on its field,
    # and a charset Python cannot decode text with is no server error.
    body = raw_multipart(BOUNDARIES[1], [(b"contact_uuid", tenant.contact_uuid.encode()),
                                         (b"shop_uuid", tenant.shop_uuid.encode()), (b"source", b"caf\xe9")])
    headers = {**tenant.headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARIES[1]}; charset={charset}"}
    response = await client.post("/visits", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == {"source": ["Must be text (UTF-8)."]}
    body = raw_multipart(BOUNDARIES[1], [(b"contact_uuid", tenant.contact_uuid.encode()),
                                         (b"shop_uuid", tenant.shop_uuid.encode()), (b"source", "café".encode())])
    response = await client.post("/visits", content=body, headers=headers)
    assert response.status_code == 201 and response.json()["data"]["source"] == "café"
