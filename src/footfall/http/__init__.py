"""How a request is served, above the domains' services and below their routes: the route class
(authentication, the request's transaction, Idempotency-Key), the body middleware, the rate limit, the
request id and log line, the trailing-slash rule, and the exception handlers."""
