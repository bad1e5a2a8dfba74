"""Dependencies shared by the routers, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from vigil.errors import AuthenticationError
from vigil.server.context import ServerContext
from vigil.server.services.accounts import AuthenticatedDevice, authenticate

__all__ = ["AppealingDevice", "AuthDevice", "Context", "bearer_credential", "client_address"]


def get_context(request: Request) -> ServerContext:
    context: ServerContext = request.app.state.context
    return context


Context = Annotated[ServerContext, Depends(get_context)]


def bearer_credential(authorization: str | None) -> str:
    """Raises AuthenticationError unless the header is `Bearer <credential>`."""
    if not authorization:
        raise AuthenticationError("missing Authorization header")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise AuthenticationError("Authorization must be 'Bearer <device credential>'")
    return credential.strip()


def client_address(request: Request) -> str:
    """The client's address as uvicorn saw it (behind a trusted proxy, from its forwarding headers)."""
    return request.client.host if request.client is not None else "unknown"


async def get_device(request: Request, ctx: Context) -> AuthenticatedDevice:
    return await authenticate(ctx, bearer_credential(request.headers.get("authorization")))


AuthDevice = Annotated[AuthenticatedDevice, Depends(get_device)]


async def get_appealing_device(request: Request, ctx: Context) -> AuthenticatedDevice:
    """Like `AuthDevice`, but a suspended account passes. Only for the endpoints a suspended account needs
    to learn why and to answer: reading the notices sent to it and appealing (nothing else)."""
    credential = bearer_credential(request.headers.get("authorization"))
    return await authenticate(ctx, credential, allow_suspended=True)


AppealingDevice = Annotated[AuthenticatedDevice, Depends(get_appealing_device)]
