"""Webhooks: a local receiver to try them with."""

import click


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhooks: a local receiver to try them with."""


@webhooks_group.command("listen")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=9000, show_default=True, type=click.IntRange(1, 65535), help="The port to listen on.")
@click.option("--secret", default=None, envvar="FOOTFALL_LISTEN_SECRET",
              help="The subscription's signing secret (whsec_...): both signatures of each delivery are "
                   "checked with it, and a delivery whose signature is wrong is answered 400.")
def webhooks_listen(host: str, port: int, secret: str | None) -> None:
    """Receive webhook deliveries here and print each one (a line, then its body), for development:
    subscribe http://HOST:PORT/anything with FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS=1 set for the server."""
    import uvicorn

    from footfall.webhooks.listen import listener

    click.echo(f"listening on http://{host}:{port}/ (Ctrl+C to stop)", err=True)
    uvicorn.run(listener(secret), host=host, port=port, log_level="warning")
