"""What every call of the license API goes through: authentication, then error mapping."""
from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import grpc
import psycopg
from sqlalchemy.exc import OperationalError

from server.domain.caller import Caller, Scope
from server.domain.errors import BadRequest, DomainError, Unauthenticated

from .errors import internal, to_status, unavailable
from .observability import CallRecord
from .registration import Undecodable

log = logging.getLogger(__name__)

Request = TypeVar("Request")
Response = TypeVar("Response")


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Caller: ...


class AuthenticatedServicer(Protocol):
    auth: Authenticator


Method = Callable[[Any, Request, grpc.aio.ServicerContext, Caller], Awaitable[Response]]


Handler = Callable[[Any, Request, grpc.aio.ServicerContext], Awaitable[Response]]


def rpc(scope: Scope) -> Callable[[Method[Request, Response]], Handler[Request, Response]]:
    """Turns `method(self, request, context, caller)` into a gRPC handler open to tokens with `scope`."""

    def decorate(method: Method[Request, Response]) -> Handler[Request, Response]:
        name = method.__name__

        # One coroutine for all of it (no inner helper to await): this runs on every call.
        @functools.wraps(method)
        async def handler(self: AuthenticatedServicer, request: Request, context: grpc.aio.ServicerContext) -> Response:
            metadata = context.invocation_metadata() or ()
            record = CallRecord.begin(name, metadata)
            try:
                record.caller = await self.auth.authenticate(bearer_token(metadata))
                record.caller.require(scope)
                if isinstance(request, Undecodable):
                    raise BadRequest.single(request.field, request.description)
                return await method(self, request, context, record.caller)
            except DomainError as error:
                status = to_status(error)
                record.code = status.code
                await context.abort_with_status(status)
            except (OperationalError, psycopg.OperationalError) as error:  # the database is down or out of connections
                log.error("database unavailable: %s", type(error).__name__)
                record.code = grpc.StatusCode.UNAVAILABLE
                await context.abort_with_status(unavailable("the database is unavailable; retry later"))
            except asyncio.CancelledError:  # the client went away or its deadline passed
                record.code = grpc.StatusCode.CANCELLED
                raise
            except Exception:
                log.exception("unexpected error in %s (request id %s)", record.method, record.request_id)
                record.code = grpc.StatusCode.INTERNAL
                await context.abort_with_status(internal(record.request_id))
            finally:
                record.finish()
            raise AssertionError("unreachable: abort_with_status raises")

        return handler

    return decorate


def bearer_token(metadata: Sequence[tuple[str, str | bytes]]) -> str:
    for name, value in metadata:
        if name == "authorization":
            scheme, _, token = str(value).partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise Unauthenticated("authorization metadata must be 'Bearer <token>'")
    raise Unauthenticated("missing authorization metadata: send 'authorization: Bearer <token>'")
