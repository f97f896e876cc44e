"""What every call of the license API goes through: authentication, then error mapping."""
from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import grpc
import psycopg
from sqlalchemy.exc import OperationalError

from server.domain.errors import DomainError, Unauthenticated

from .errors import to_status, unavailable

log = logging.getLogger(__name__)

Request = TypeVar("Request")
Response = TypeVar("Response")


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> uuid.UUID: ...


class AuthenticatedServicer(Protocol):
    auth: Authenticator


Method = Callable[[Any, Request, grpc.aio.ServicerContext, uuid.UUID], Awaitable[Response]]


def rpc(method: Method[Request, Response]) -> Callable[[Any, Request, grpc.aio.ServicerContext], Awaitable[Response]]:
    """Turns `method(self, request, context, account_id)` into a gRPC handler."""

    @functools.wraps(method)
    async def handler(self: AuthenticatedServicer, request: Request, context: grpc.aio.ServicerContext) -> Response:
        try:
            account_id = await self.auth.authenticate(bearer_token(context))
            return await method(self, request, context, account_id)
        except DomainError as error:
            await context.abort_with_status(to_status(error))
        except (OperationalError, psycopg.OperationalError):  # the database is down or out of connections
            log.exception("database unavailable")
            await context.abort_with_status(unavailable("the database is unavailable; retry later"))
        raise AssertionError("unreachable: abort_with_status raises")

    return handler


def bearer_token(context: grpc.aio.ServicerContext) -> str:
    for name, value in context.invocation_metadata() or ():
        if name == "authorization":
            scheme, _, token = str(value).partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise Unauthenticated("authorization metadata must be 'Bearer <token>'")
    raise Unauthenticated("missing authorization metadata: send 'authorization: Bearer <token>'")
