"""The ledger's conditional appends against DynamoDB: an entry is written once and never changed."""

import dataclasses

import pytest

from payments import ledger, topology
from payments.ledger import EntryAlreadyExists, LedgerEntry, LedgerRepository, persist_terminal_entry
from tests.adapters.conftest import items_of

TABLE = topology.LEDGER_TABLE.name
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:PaymentWorkflow:order-ab"
OTHER_EXECUTION = EXECUTION + "-again"


def entry(number=1, status=ledger.INITIATED, **changes):
    values = {
        "TransactionID": "order-ab",
        "EntryNumber": number,
        "Status": status,
        "SecureToken": "AYADeJ-ciphertext",
        "Amount": "25.00",
        "Currency": "USD",
        "ProcessorID": "elavon",
        "ExecutionArn": EXECUTION,
        "CreatedAt": "2026-11-27T06:00:00.000000Z",
    }
    return LedgerEntry(**{**values, **changes})


@pytest.fixture
def repository(dynamodb):
    return LedgerRepository(TABLE, client=dynamodb)


def stored(dynamodb):
    return sorted(
        (LedgerEntry.from_item(item) for item in items_of(dynamodb, TABLE, "order-ab")), key=lambda e: e.EntryNumber
    )


def test_an_entry_is_written_as_given(repository, dynamodb):
    written = repository.append_entry(entry())

    assert written == entry()
    assert stored(dynamodb) == [entry()]


def test_the_same_entry_again_is_a_no_op_that_keeps_the_first_write(repository, dynamodb):
    # Given entry 1, written; When a retry writes it again with its own timestamp
    repository.append_entry(entry())
    again = repository.append_entry(entry(CreatedAt="2026-11-27T06:00:09.000000Z"))

    # Then the retry succeeds and reports the entry the ledger holds, which is untouched
    assert again.CreatedAt == "2026-11-27T06:00:00.000000Z"
    assert stored(dynamodb) == [entry()]


@pytest.mark.parametrize(
    "change",
    [{"Status": ledger.FAILED}, {"Amount": "25.01"}, {"ExecutionArn": OTHER_EXECUTION}, {"SecureToken": "other"}],
    ids=lambda change: next(iter(change)),
)
def test_a_different_entry_in_a_taken_slot_is_a_conflict_that_changes_nothing(repository, dynamodb, change):
    repository.append_entry(entry())

    with pytest.raises(EntryAlreadyExists) as conflict:
        repository.append_entry(entry(**change))

    assert conflict.value.existing == entry()
    assert stored(dynamodb) == [entry()]


def test_the_terminal_entry_goes_after_the_last_one(repository, dynamodb):
    repository.append_entry(entry(1))
    repository.append_entry(entry(2, ledger.PENDING))

    written = persist_terminal_entry(repository, entry(3, ledger.SUCCESS, ApprovalCode="A1"))

    assert written == entry(3, ledger.SUCCESS, ApprovalCode="A1")
    assert [e.Status for e in stored(dynamodb)] == [ledger.INITIATED, ledger.PENDING, ledger.SUCCESS]


def test_a_stale_position_moves_past_this_executions_own_progress_entry(repository, dynamodb):
    # Given PENDING was written but its step's response was lost: the state still says entry 1
    repository.append_entry(entry(1))
    repository.append_entry(entry(2, ledger.PENDING))

    # When the terminal entry is written "after entry 1"
    written = persist_terminal_entry(repository, entry(2, ledger.FAILED, ReasonCode="SYSTEM_ERROR"))

    # Then it lands in slot 3, and entry 2 is untouched
    assert written.EntryNumber == 3
    assert [e.Status for e in stored(dynamodb)] == [ledger.INITIATED, ledger.PENDING, ledger.FAILED]


def test_there_is_only_ever_one_terminal_entry(repository, dynamodb):
    # Given this execution already wrote PAYMENT-SUCCESS
    for e in (entry(1), entry(2, ledger.PENDING), entry(3, ledger.SUCCESS, ApprovalCode="A1")):
        repository.append_entry(e)

    # When a fallback tries to write PAYMENT-FAILED after a stale position
    written = persist_terminal_entry(repository, entry(3, ledger.FAILED, ReasonCode="SYSTEM_ERROR"))

    # Then the success stands and nothing else is written
    assert written.Status == ledger.SUCCESS
    assert [e.Status for e in stored(dynamodb)] == [ledger.INITIATED, ledger.PENDING, ledger.SUCCESS]


def test_a_slot_taken_by_another_execution_is_never_skipped(repository, dynamodb):
    repository.append_entry(entry(1))
    repository.append_entry(entry(2, ledger.PENDING, ExecutionArn=OTHER_EXECUTION))

    with pytest.raises(EntryAlreadyExists):
        persist_terminal_entry(repository, entry(2, ledger.FAILED, ReasonCode="SYSTEM_ERROR"))

    assert len(stored(dynamodb)) == 2


def test_the_terminal_entry_never_goes_past_the_last_slot(repository, dynamodb):
    last = ledger.LAST_ENTRY_NUMBER
    for number in range(1, last + 1):
        repository.append_entry(entry(number, ledger.PENDING if number > 1 else ledger.INITIATED))

    with pytest.raises(EntryAlreadyExists):
        persist_terminal_entry(repository, entry(last, ledger.FAILED, ReasonCode="SYSTEM_ERROR"))

    assert len(stored(dynamodb)) == last


def test_entries_round_trip_through_dynamodb_items(repository, dynamodb):
    full = entry(
        3,
        ledger.DECLINED,
        CardBrand="VISA",
        CardLast4="1111",
        ProcessorTransactionID="T-1",
        ReasonCode="DO_NOT_HONOR",
        ReasonMessage="DECLINED",
    )
    repository.append_entry(full)

    assert stored(dynamodb) == [full]
    assert dataclasses.asdict(stored(dynamodb)[0]) == dataclasses.asdict(full)
