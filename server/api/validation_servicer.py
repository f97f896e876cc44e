"""ValidationService: every answer about a license is a signed result, not an error."""
from __future__ import annotations

from datetime import timedelta
from typing import TypeAlias, TypeVar

import grpc

from licensing.v1 import validation_pb2 as pb
from licensing.v1 import validation_pb2_grpc
from server.adapters.signing import Signer
from server.domain import validation
from server.domain.caller import Caller, Scope
from server.domain.validation import Check, Code, Mode
from server.service.auth import Authenticator
from server.service.validation import Outcome, ValidationService

from .convert import fill_license, set_time
from .handler import rpc

Context: TypeAlias = grpc.aio.ServicerContext  # type: ignore[type-arg]
Answer = TypeVar("Answer", pb.ValidateLicenseResponse, pb.HeartbeatResponse)

_CODES = {
    Code.VALID: pb.VALIDATION_CODE_VALID,
    Code.NOT_FOUND: pb.VALIDATION_CODE_NOT_FOUND,
    Code.REVOKED: pb.VALIDATION_CODE_REVOKED,
    Code.EXPIRED: pb.VALIDATION_CODE_EXPIRED,
    Code.HWID_MISMATCH: pb.VALIDATION_CODE_HWID_MISMATCH,
    Code.APP_MISMATCH: pb.VALIDATION_CODE_APP_MISMATCH,
}


class ValidationServicer(validation_pb2_grpc.ValidationServiceServicer):
    def __init__(self, validation_service: ValidationService, auth: Authenticator, signer: Signer,
                 receipt_ttl: timedelta) -> None:
        self.validation = validation_service
        self.auth = auth
        self.signer = signer
        self.receipt_ttl = receipt_ttl

    @rpc(Scope.VALIDATE)
    async def ValidateLicense(self, request: pb.ValidateLicenseRequest, context: Context, caller: Caller) -> pb.ValidateLicenseResponse:
        return await self._answer(pb.ValidateLicenseResponse(), request, caller, Mode.VALIDATE)

    @rpc(Scope.VALIDATE)
    async def Heartbeat(self, request: pb.HeartbeatRequest, context: Context, caller: Caller) -> pb.HeartbeatResponse:
        return await self._answer(pb.HeartbeatResponse(), request, caller, Mode.HEARTBEAT)

    @rpc(Scope.VALIDATE)
    async def GetSigningKeys(self, request: pb.GetSigningKeysRequest, context: Context, caller: Caller) -> pb.GetSigningKeysResponse:
        return pb.GetSigningKeysResponse(
            keys=[pb.SigningKey(key_id=k.key_id, public_key=k.public_bytes) for k in self.signer.keys]
        )

    async def _answer(self, response: Answer, request: pb.ValidateLicenseRequest | pb.HeartbeatRequest,
                      caller: Caller, mode: Mode) -> Answer:
        check = _parse(request)
        self._fill_result(response.result, check, await self.validation.check(caller, check, mode))
        return response

    def _fill_result(self, result: pb.ValidationResult, check: Check, outcome: Outcome) -> None:
        """Fills the response's own result field: a result passed to the response's constructor
        would be copied in."""
        lic, now = outcome.license, outcome.checked_at
        valid, code = outcome.verdict.valid, _CODES[outcome.verdict.code]
        used, allowed = validation.seats(lic)
        receipt = pb.ValidationReceipt(
            key=check.key, app_id=check.app_id, hwid=check.hwid, valid=valid, code=code, nonce=check.nonce,
        )
        set_time(receipt.issued_at, now)
        valid_until = now + self.receipt_ttl
        if lic is not None and lic.expires_at is not None:
            set_time(receipt.license_expires_at, lic.expires_at)
            if valid:
                valid_until = min(valid_until, lic.expires_at)  # a cached "valid" must not outlive the license
        set_time(receipt.valid_until, valid_until)
        payload = receipt.SerializeToString(deterministic=True)
        key_id, signature = self.signer.sign(payload)
        result.valid, result.code = valid, code
        result.seats_used, result.seats_allowed = used, allowed
        result.receipt, result.signature, result.signing_key_id = payload, signature, key_id
        if lic is not None:
            fill_license(result.license, lic, now)


def _parse(request: pb.ValidateLicenseRequest | pb.HeartbeatRequest) -> Check:
    return validation.parse_check(app_id=request.app_id, key=request.key, hwid=request.hwid, nonce=request.nonce)
