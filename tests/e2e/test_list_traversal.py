"""ListLicenses page by page: every license once, oldest first, even while licenses are being created."""
from __future__ import annotations

import threading
from collections import Counter

from licensing.v1 import licenses_pb2 as pb
from tests.support import Account, MakeAccount, Stub, get, second_app


def _create(stub: Stub, account: Account, quantity: int, app_id: str | None = None) -> list[str]:
    """Creates licenses and returns their keys in creation order."""
    response = stub.CreateLicenses(
        pb.CreateLicensesRequest(app_id=app_id or account.app_id, quantity=quantity), metadata=account.auth
    )
    return [lic.key for lic in response.licenses]


def _create_many(stub: Stub, account: Account, total: int, batch: int = 10, app_id: str | None = None) -> list[str]:
    keys: list[str] = []
    while len(keys) < total:
        keys += _create(stub, account, min(batch, total - len(keys)), app_id)
    return keys


def _page(stub: Stub, account: Account, cursor: str = "", limit: int | None = None, app_id: str | None = None) -> pb.ListLicensesResponse:
    request = pb.ListLicensesRequest(app_id=app_id or account.app_id, cursor=cursor)
    if limit is not None:
        request.limit = limit
    return stub.ListLicenses(request, metadata=account.auth)


def _traverse(stub: Stub, account: Account, limit: int, app_id: str | None = None) -> list[pb.ListLicensesResponse]:
    """Every page of a listing, following cursors until one is empty."""
    pages = [_page(stub, account, limit=limit, app_id=app_id)]
    while pages[-1].cursor:
        pages.append(_page(stub, account, pages[-1].cursor, limit, app_id))
        assert len(pages) < 1000, "the listing does not end"
    return pages


def _keys(pages: list[pb.ListLicensesResponse]) -> list[str]:
    return [lic.key for page in pages for lic in page.licenses]


def test_full_traversal_returns_each_license_once_in_creation_order(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account()
    created = _create_many(stub, account, 100, batch=25)

    pages = _traverse(stub, account, limit=7)

    assert _keys(pages) == created
    assert [len(p.licenses) for p in pages] == [7] * 14 + [2]


def test_only_the_last_page_has_an_empty_cursor(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account()
    _create_many(stub, account, 100, batch=25)

    pages = _traverse(stub, account, limit=7)

    assert all(page.cursor for page in pages[:-1])
    assert pages[-1].cursor == ""


def test_listing_an_exact_multiple_of_the_limit_ends_without_an_empty_page(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account()
    created = _create(stub, account, 14)

    pages = _traverse(stub, account, limit=7)

    assert [len(p.licenses) for p in pages] == [7, 7]
    assert _keys(pages) == created


def test_traversal_during_concurrent_creates_returns_every_earlier_license_once(
    stub: Stub, make_account: MakeAccount
) -> None:
    account = make_account()
    seeded = _create_many(stub, account, 50)
    written: list[str] = []  # keys the writer created, in creation order
    progress = threading.Condition()
    writer_done = threading.Event()

    def write() -> None:
        try:
            for _ in range(15):
                keys = _create(stub, account, 3)
                with progress:
                    written.extend(keys)
                    progress.notify_all()
        finally:
            writer_done.set()
            with progress:
                progress.notify_all()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with progress:
            progress.wait_for(lambda: len(written) > 0, timeout=10)
            before = seeded + list(written)  # everything committed when the traversal begins
        seen: list[str] = []
        cursor = ""
        while True:
            page = _page(stub, account, cursor, limit=7)
            seen += [lic.key for lic in page.licenses]
            cursor = page.cursor
            if not cursor:
                break
            with progress:  # let at least one more create commit between two pages, while the writer runs
                count = len(written)
                progress.wait_for(lambda: len(written) > count or writer_done.is_set(), timeout=10)
    finally:
        writer.join(timeout=30)

    assert len(seeded) + len(written) > len(before), "no license was created while the traversal ran"
    assert not [key for key, n in Counter(seen).items() if n > 1], "a license was listed twice"
    assert set(before) <= set(seen), "a license that existed before the traversal was skipped"
    # One writer at a time commits in key order, so what a traversal sees is a prefix of the creations.
    assert seen == (seeded + written)[: len(seen)]


def test_listing_never_shows_licenses_of_another_app(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account()
    other_app = second_app(account)
    mine: list[str] = []
    theirs: list[str] = []
    for _ in range(5):  # interleaved, so the two apps' rows sit side by side in the table
        mine += _create(stub, account, 4)
        theirs += _create(stub, account, 4, app_id=other_app)

    pages = _traverse(stub, account, limit=3)

    assert _keys(pages) == mine
    assert {lic.app_id for page in pages for lic in page.licenses} == {account.app_id}
    assert _keys(_traverse(stub, account, limit=3, app_id=other_app)) == theirs


def test_default_page_size_is_50(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account()
    created = _create(stub, account, 60)

    first = _page(stub, account)
    second = _page(stub, account, first.cursor)

    assert [lic.key for lic in first.licenses] == created[:50]
    assert first.cursor
    assert [lic.key for lic in second.licenses] == created[50:]
    assert second.cursor == ""


def test_limit_200_returns_200_licenses_per_page(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account()
    created = _create_many(stub, account, 210, batch=100)

    first = _page(stub, account, limit=200)
    second = _page(stub, account, first.cursor, limit=200)

    assert [lic.key for lic in first.licenses] == created[:200]
    assert [lic.key for lic in second.licenses] == created[200:]
    assert second.cursor == ""


def test_listed_licenses_carry_status_and_empty_hwids(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account()
    keys = _create(stub, account, 3)
    stub.UpdateLicense(
        pb.UpdateLicenseRequest(key=keys[1], action=pb.LICENSE_ACTION_REVOKE), metadata=account.auth
    )

    listed = list(_page(stub, account).licenses)

    assert [lic.status for lic in listed] == [
        pb.LICENSE_STATUS_ACTIVE, pb.LICENSE_STATUS_REVOKED, pb.LICENSE_STATUS_ACTIVE,
    ]
    assert all(len(lic.hwids) == 0 for lic in listed)
    for lic in listed:  # a listed license is the whole license, as GetLicense shows it
        assert lic == get(stub, account.auth, lic.key)


def test_empty_app_lists_nothing_with_an_empty_cursor(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account()

    page = _page(stub, account, limit=7)

    assert list(page.licenses) == []
    assert page.cursor == ""
