"""LicenseService: parses each request, runs one use case, converts the result."""
from __future__ import annotations

from typing import TypeAlias

import grpc

from licensing.v1 import licenses_pb2 as pb
from licensing.v1 import licenses_pb2_grpc
from server.domain import commands
from server.domain.caller import Caller, Scope
from server.domain.clock import utcnow
from server.service.auth import Authenticator
from server.service.licenses import LicenseService

from .convert import ACTIONS, fill_license, fill_licenses, optional_int, optional_time, with_license
from .handler import rpc

Context: TypeAlias = grpc.aio.ServicerContext  # type: ignore[type-arg]


class LicenseServicer(licenses_pb2_grpc.LicenseServiceServicer):
    def __init__(self, licenses: LicenseService, auth: Authenticator) -> None:
        self.licenses = licenses
        self.auth = auth

    @rpc(Scope.WRITE)
    async def CreateLicenses(self, request: pb.CreateLicensesRequest, context: Context, caller: Caller) -> pb.CreateLicensesResponse:
        now = utcnow()
        cmd = commands.create_licenses(
            app_id=request.app_id,
            quantity=optional_int(request, "quantity"),
            expires_at=optional_time(request, "expires_at"),
            max_hwid_slots=optional_int(request, "max_hwid_slots"),
            unlimited_hwid_slots=request.unlimited_hwid_slots,
            label=request.label,
            request_id=request.request_id,
            now=now,
        )
        created = await self.licenses.create(caller, cmd)
        response = pb.CreateLicensesResponse()
        fill_licenses(response.licenses, created, now)
        return response

    @rpc(Scope.READ)
    async def ListLicenses(self, request: pb.ListLicensesRequest, context: Context, caller: Caller) -> pb.ListLicensesResponse:
        cmd = commands.list_licenses(app_id=request.app_id, limit=optional_int(request, "limit"), cursor=request.cursor)
        page = await self.licenses.list(caller, cmd)
        response = pb.ListLicensesResponse(cursor=page.cursor)
        now = utcnow()
        for lic in page.licenses:
            fill_license(response.licenses.add(), lic, now)
        return response

    @rpc(Scope.READ)
    async def GetLicense(self, request: pb.GetLicenseRequest, context: Context, caller: Caller) -> pb.GetLicenseResponse:
        lic = await self.licenses.get(caller, commands.license_key(request.key))
        return with_license(pb.GetLicenseResponse(), lic, utcnow())

    @rpc(Scope.WRITE)
    async def UpdateLicense(self, request: pb.UpdateLicenseRequest, context: Context, caller: Caller) -> pb.UpdateLicenseResponse:
        now = utcnow()
        cmd = commands.update_license(
            key=request.key,
            action=ACTIONS.get(request.action),
            expires_at=optional_time(request, "expires_at"),
            now=now,
        )
        lic = await self.licenses.update(caller, cmd)
        return with_license(pb.UpdateLicenseResponse(), lic, utcnow())

    @rpc(Scope.WRITE)
    async def DeleteLicense(self, request: pb.DeleteLicenseRequest, context: Context, caller: Caller) -> pb.DeleteLicenseResponse:
        lic = await self.licenses.delete(caller, commands.license_key(request.key))
        return with_license(pb.DeleteLicenseResponse(), lic, utcnow())
