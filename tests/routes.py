"""Every authenticated API route, for the tests that go over them all (tests/test_auth.py,
tests/test_security.py)."""

import json

# (method, path, body): {visit}, {shop}, {contact}, {subscription} and {delivery} stand for uuids.
ROUTES = [
    ("GET", "/visits", None),
    ("GET", "/visits/{visit}", None),
    ("POST", "/visits", {"contact_uuid": "{contact}", "shop_uuid": "{shop}"}),
    ("PUT", "/visits/{visit}", {"source": "x"}),
    ("GET", "/visits/changes", None),
    ("GET", "/visits/export", None),
    ("DELETE", "/visits/{visit}", None),
    ("POST", "/visits/batch", {"visits": [{"contact_uuid": "{contact}", "shop_uuid": "{shop}"}]}),
    ("GET", "/shops", None),
    ("GET", "/shops/{shop}", None),
    ("GET", "/contacts", None),
    ("GET", "/contacts/{contact}", None),
    ("GET", "/contacts/find-one-by?email=a@b.sea", None),
    ("GET", "/contacts/find-or-create?email=a@b.sea", None),
    ("POST", "/contacts", {"email": "a@b.sea"}),
    ("POST", "/contacts/async", {"email": "a@b.sea"}),
    ("GET", "/contacts/find-or-create/async?email=a@b.sea", None),
    ("POST", "/contacts/anonymous", None),
    ("PUT", "/contacts/{contact}/claim", {"email": "a@b.sea"}),
    ("DELETE", "/contacts/{contact}", None),
    ("POST", "/contacts/{contact}/delete", {"type": "DEFAULT"}),
    ("GET", "/webhook-subscriptions", None),
    ("POST", "/webhook-subscriptions", {"name": "n", "event_type": "visit_created", "url": "http://127.0.0.1/h"}),
    ("GET", "/webhook-subscriptions/{subscription}", None),
    ("PUT", "/webhook-subscriptions/{subscription}", {"name": "n"}),
    ("DELETE", "/webhook-subscriptions/{subscription}", None),
    ("GET", "/webhook-subscriptions/{subscription}/deliveries", None),
    ("POST", "/webhook-subscriptions/{subscription}/deliveries/{delivery}/retry", None),
    ("GET", "/contacts/export", None),
    ("GET", "/contacts/{contact}/visit-rules", None),
    ("GET", "/visit-rules", None),
    ("POST", "/visit-rules", {"name": "n", "kind": "milestone", "every": 5}),
    ("GET", "/visit-rules/{rule}", None),
    ("PUT", "/visit-rules/{rule}", {"name": "n"}),
    ("DELETE", "/visit-rules/{rule}", None),
]
PLACEHOLDERS = ("visit", "shop", "contact", "subscription", "delivery", "rule")


def route_id(route) -> str:
    method, path, _ = route
    return f"{method} {path}"


def fill(text: str, ids: dict[str, str]) -> str:
    """text with each {placeholder} replaced by ids[placeholder]."""
    for name, value in ids.items():
        text = text.replace("{" + name + "}", value)
    return text


def request_for(route, ids: dict[str, str]):
    """(method, path, JSON body) with each placeholder replaced by ids[placeholder]."""
    method, path, body = route
    return method, fill(path, ids), (json.loads(fill(json.dumps(body), ids)) if body else None)
