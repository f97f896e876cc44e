"""Servicers registered from their service descriptors, with request decoding that cannot fail.

gRPC answers a request that does not parse (a string field that is not UTF-8, truncated bytes) with
UNKNOWN "Unexpected DecodeError" before any of our code runs: not the INVALID_ARGUMENT, naming the
field, that every other bad input gets. Registered here, a method's deserializer returns
`Undecodable` instead of raising, and the `@rpc` handler answers it like any bad input, after
authentication as always. Otherwise this is what the generated `add_*Servicer_to_server` does.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message


@dataclass(frozen=True)
class Undecodable:
    """A request that is not a valid message of its type."""

    field: str  # the top-level field at fault when it can be told, else "request"
    description: str


def add_servicer(server: grpc.aio.Server, service: ServiceDescriptor, servicer: object) -> None:
    handlers = {}
    for method in service.methods:
        if method.client_streaming or method.server_streaming:
            raise ValueError(f"{method.full_name}: only unary methods are registered here")
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=_tolerant(request_class),
            response_serializer=response_class.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)


def _tolerant(request_class: type[Message]) -> Callable[[bytes], Message | Undecodable]:
    def deserialize(data: bytes) -> Message | Undecodable:
        try:
            return request_class.FromString(data)
        except DecodeError:
            return _undecodable(request_class, data)

    return deserialize


def _undecodable(request_class: type[Message], data: bytes) -> Undecodable:
    bad_text = _field_with_bad_utf8(request_class, data)
    if bad_text is not None:
        return Undecodable(bad_text, "must be UTF-8 text")
    return Undecodable("request", f"is not a valid {request_class.DESCRIPTOR.full_name} message")


def _field_with_bad_utf8(request_class: type[Message], data: bytes) -> str | None:
    """The top-level string field whose bytes are not UTF-8 (the usual cause), by walking the wire format."""
    fields = request_class.DESCRIPTOR.fields_by_number
    position = 0
    try:
        while position < len(data):
            key, position = _varint(data, position)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0:
                _, position = _varint(data, position)
            elif wire_type == 1:
                position += 8
            elif wire_type == 5:
                position += 4
            elif wire_type == 2:
                length, position = _varint(data, position)
                value, position = data[position:position + length], position + length
                field = fields.get(number)
                if field is not None and field.type == FieldDescriptor.TYPE_STRING:
                    value.decode("utf-8")
            else:
                return None
    except UnicodeDecodeError:
        return str(fields[number].name)
    except IndexError:
        return None
    return None


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7

