from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from vigil.protocol.wire import MAX_WIRE_INT, AckRequest, FetchResponse, SendAccepted, SendRequest
from vigil.server.api.deps import AuthDevice, Context, bearer_credential
from vigil.server.api.errors import answer_error, error_response, validation_details
from vigil.server.context import ServerContext
from vigil.server.ratelimit import Limit
from vigil.server.services import messaging
from vigil.server.services.accounts import authenticate

router = APIRouter(prefix="/v1/messages", tags=["messages"])


async def send(request: SendRequest, ctx: Context, device: AuthDevice) -> SendAccepted:
    await ctx.limiter.hit(Limit.SENDS_PER_DEVICE, device.device_id)
    return await messaging.send_message(ctx, device, request)


async def _answer_send(ctx: ServerContext, headers: Headers, body: bytes) -> Response:
    """`send` without FastAPI's per-request machinery (dependency resolution, body validation through
    python objects, response-model validation: ~18% of the relay's server CPU): the same steps in the
    same order (authenticate, validate the body, rate limit, send) and the same error answers."""
    device = await authenticate(ctx, bearer_credential(headers.get("authorization")))
    parsed = _send_request(body, headers.get("content-type"))
    if isinstance(parsed, Response):
        return parsed
    accepted = await send(parsed, ctx, device)
    return Response(accepted.model_dump_json(), status_code=202, media_type="application/json")


async def _serve_send(http: Request) -> Response:
    """The route's handler, for a request that reaches the router (see `serve_send`)."""
    return await _answer_send(http.app.state.context, http.headers, await http.body())


def is_send(scope: Scope) -> bool:
    """Whether `serve_send` answers this request: `POST /v1/messages`, the relay's hot route."""
    return (
        scope["type"] == "http"
        and scope["path"] == SEND_PATH
        and scope["method"] == "POST"
        and not scope.get("root_path")
    )


async def serve_send(scope: Scope, receive: Receive, respond: Send) -> None:
    """`POST /v1/messages` as a plain ASGI app, in front of Starlette's routing and its exception,
    exit-stack and error middleware (~20% of a send's server CPU in a profile of the relay). What those
    gave this route is done here: the route is recorded in the scope (the access log names its
    template), an error is answered by the handler the app would have chosen (`answer_error`). The
    app's own middleware (the body limits, the access log) wraps it as it wraps the app (`app._VigilApp`)."""
    scope["route"] = _SEND_ROUTE
    body = await _read_body(receive)  # a refused body raises to `RequestBodyLimits`, which answers it
    if body is None:
        return  # the client went away before its body arrived: nothing was sent
    try:
        response = await _answer_send(scope["app"].state.context, Headers(scope=scope), body)
    except Exception as error:
        response = await answer_error(Request(scope), error)
    await response(scope, receive, respond)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


_NOT_AN_OBJECT = [
    {"loc": ["body"], "msg": "Input should be a valid dictionary or object to extract fields from"}
]


def _send_request(body: bytes, content_type: str | None) -> SendRequest | Response:
    """The body as FastAPI would have read it: JSON unless another content type is declared, 400 for
    JSON that does not parse, 422 naming every field that is wrong."""
    if not body:
        return error_response(422, "invalid_request", [{"loc": ["body"], "msg": "Field required"}])
    if content_type and not _is_json(content_type):
        return error_response(422, "invalid_request", _NOT_AN_OBJECT)
    try:
        return SendRequest.model_validate_json(body)
    except pydantic.ValidationError as error:
        errors = error.errors(include_url=False, include_input=False)
        if any(item["type"] == "json_invalid" for item in errors):
            return error_response(400, "malformed_json", "the request body is not valid JSON")
        return error_response(422, "invalid_request", validation_details(errors, prefix=("body",)))


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


class _LeanSendRoute(APIRoute):
    """Documented from `send`'s signature like every route (OpenAPI, the fuzz test), served by
    `_serve_send`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return _serve_send


router.add_api_route(
    "",
    send,
    methods=["POST"],
    status_code=202,
    response_model=SendAccepted,
    route_class_override=_LeanSendRoute,
)
SEND_PATH = "/v1/messages"
_SEND_ROUTE = next(route for route in router.routes if isinstance(route, _LeanSendRoute))
assert _SEND_ROUTE.path == SEND_PATH


@router.get("")
async def fetch(
    ctx: Context,
    device: AuthDevice,
    after: Annotated[int, Query(ge=0, le=MAX_WIRE_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FetchResponse:
    return await messaging.fetch_pending(ctx, device, after=after, limit=limit)


@router.post("/ack")
async def ack(request: AckRequest, ctx: Context, device: AuthDevice) -> dict[str, int]:
    return {"deleted": await messaging.acknowledge(ctx, device, request)}
