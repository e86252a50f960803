"""The ledger's conditional appends against DynamoDB: an entry is written once and never changed."""

import dataclasses

import pytest

from payments import chain, ledger, topology
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


def unchained(written):
    """The entry as its writer gave it: the ledger adds PrevHash and EntryHash (payments.chain)."""
    return dataclasses.replace(written, PrevHash=None, EntryHash=None)


def stored(dynamodb):
    entries = (LedgerEntry.from_item(item) for item in items_of(dynamodb, TABLE, "order-ab"))
    return [unchained(e) for e in sorted(entries, key=lambda e: e.EntryNumber)]


def test_an_entry_is_written_as_given(repository, dynamodb):
    written = repository.append_entry(entry())

    assert unchained(written) == entry()
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

    assert unchained(conflict.value.existing) == entry()
    assert stored(dynamodb) == [entry()]


def test_the_terminal_entry_goes_after_the_last_one(repository, dynamodb):
    repository.append_entry(entry(1))
    repository.append_entry(entry(2, ledger.PENDING))

    written = persist_terminal_entry(repository, entry(3, ledger.SUCCESS, ApprovalCode="A1"))

    assert unchained(written) == entry(3, ledger.SUCCESS, ApprovalCode="A1")
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


def raw_entries(dynamodb):
    return sorted(items_of(dynamodb, TABLE, "order-ab"), key=lambda item: int(item["EntryNumber"]["N"]))


def test_each_entry_links_to_the_one_before(repository, dynamodb):
    repository.append_entry(entry(1))
    repository.append_entry(entry(2, ledger.PENDING))
    written = persist_terminal_entry(repository, entry(3, ledger.SUCCESS, ApprovalCode="A1"))

    first, second, third = raw_entries(dynamodb)
    assert first["PrevHash"] == {"S": chain.GENESIS}
    assert second["PrevHash"] == first["EntryHash"] and third["PrevHash"] == second["EntryHash"]
    assert written.EntryHash == third["EntryHash"]["S"] == chain.entry_hash(third)
    assert chain.verify_ledger_chain("order-ab", [first, second, third]) == []


def test_a_retry_links_to_entry_n_minus_1_not_to_the_latest_entry(repository, dynamodb):
    # Given entries 1..3, entry 2's first write having lost its response
    for e in (entry(1), entry(2, ledger.PENDING), entry(3, ledger.SUCCESS, ApprovalCode="A1")):
        repository.append_entry(e)
    sent = []
    dynamodb.meta.events.register("provide-client-params.dynamodb.PutItem", lambda params, **_: sent.append(params))

    # When entry 2 is written again
    again = repository.append_entry(entry(2, ledger.PENDING, CreatedAt="2026-11-27T06:00:09.000000Z"))

    # Then the retry linked as the first write did, and it is a no-op that reports the stored entry
    first, second, _ = raw_entries(dynamodb)
    assert sent[-1]["Item"]["PrevHash"] == first["EntryHash"]
    assert again.EntryHash == second["EntryHash"]["S"]
    assert chain.verify_ledger_chain("order-ab", raw_entries(dynamodb)) == []


def test_the_terminal_entry_is_written_even_after_a_removed_entry_and_the_gap_is_named(repository, dynamodb):
    # Given entry 2 deleted behind the ledger's back
    repository.append_entry(entry(1))
    repository.append_entry(entry(2, ledger.PENDING))
    dynamodb.delete_item(TableName=TABLE, Key={"TransactionID": {"S": "order-ab"}, "EntryNumber": {"N": "2"}})

    # When the outcome is recorded: what happened to the money is still written
    written = persist_terminal_entry(repository, entry(3, ledger.SUCCESS, ApprovalCode="A1"))

    assert written.Status == ledger.SUCCESS
    findings = chain.verify_ledger_chain("order-ab", raw_entries(dynamodb))
    assert [(f.where, f.kind) for f in findings] == [("entry 2", chain.REMOVED)]
