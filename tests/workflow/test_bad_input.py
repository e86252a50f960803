"""Bad input, as upstream services send it (through the intake) and straight to StartExecution:
InvalidPaymentRequest naming the field, nothing vaulted, nothing started, nothing written, nothing charged."""

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local import operations
from local.payment_requests import VISA, new_transaction_id, token_request
from tests.workflow.conftest import card_request
from upstream.client import InvalidPaymentRequest, PaymentRefused


def valid(transaction_id):
    return card_request(transaction_id)


def at(path, value):
    def mutate(request):
        node = request
        for key in path[:-1]:
            node = node[key]
        if value is DELETE:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value

    return mutate


DELETE = object()
PM = "PaymentMethod"
CORPUS = [
    ("missing amount", at(("Amount",), DELETE), "Amount"),
    ("missing card number", at((PM, "Number"), DELETE), "PaymentMethod.Number"),
    ("extra top-level field", at(("Tip",), "1.00"), "[unexpected field]"),
    ("extra card field", at((PM, "Pin"), "1234"), "PaymentMethod.[unexpected field]"),
    ("float amount", at(("Amount",), 25.0), "Amount"),
    ("integer amount", at(("Amount",), 25), "Amount"),
    ("negative amount", at(("Amount",), "-5.00"), "Amount"),
    ("zero amount", at(("Amount",), "0.00"), "Amount"),
    ("over-precise amount", at(("Amount",), "25.001"), "Amount"),
    ("amount above the maximum", at(("Amount",), "100000000.00"), "Amount"),
    ("unknown currency", at(("Currency",), "ZZZ"), "Currency"),
    ("lower-case currency", at(("Currency",), "usd"), "Currency"),
    ("unknown processor", at(("ProcessorID",), "stripe"), "ProcessorID"),
    ("expired card", at((PM, "ExpiryYear"), 2021), "PaymentMethod.ExpiryYear"),
    ("Luhn failure", at((PM, "Number"), "4111111111111112"), "PaymentMethod.Number"),
    ("11-digit PAN", at((PM, "Number"), "41111111113"), "PaymentMethod.Number"),
    ("20-digit PAN", at((PM, "Number"), "41111111111111111113"), "PaymentMethod.Number"),
    ("non-ASCII digits", at((PM, "Number"), "٤١١١١١١١١١١١١١١١"), "PaymentMethod.Number"),
    ("control character in name", at((PM, "HolderName"), "Ada\x00Lovelace"), "PaymentMethod.HolderName"),
    ("right-to-left override in name", at((PM, "HolderName"), "Ada\u202eLovelace"), "PaymentMethod.HolderName"),
    ("XML in name", at((PM, "HolderName"), "</ssl_first_name><ssl_amount>0.01"), "PaymentMethod.HolderName"),
    ("SQL in name", at((PM, "HolderName"), "Robert'); DROP TABLE PaymentLedger;--"), "PaymentMethod.HolderName"),
    ("XML in description", at(("Description",), "<txn><ssl_amount>0.01</ssl_amount></txn>"), "Description"),
    ("SQL in description", at(("Description",), "x' OR '1'='1"), "Description"),
    ("250 KB description", at(("Description",), "x" * 250_000), "Description"),
    ("PAN in description", at(("Description",), "card 4111 1111 1111 1111"), "Description"),
    ("payment method is a list", at((PM,), ["card"]), "PaymentMethod"),
    ("payment method is a string", at((PM,), "4111111111111111"), "PaymentMethod"),
    ("expiry month as text", at((PM, "ExpiryMonth"), "12"), "PaymentMethod.ExpiryMonth"),
    ("expiry month 13", at((PM, "ExpiryMonth"), 13), "PaymentMethod.ExpiryMonth"),
    ("CVV as a number", at((PM, "Cvv"), 847), "PaymentMethod.Cvv"),
    ("CVV of five digits", at((PM, "Cvv"), "84712"), "PaymentMethod.Cvv"),
    ("boolean amount", at(("Amount",), True), "Amount"),
    ("null currency", at(("Currency",), None), "Currency"),
    ("unknown payment method type", at((PM, "Type"), "bitcoin"), "PaymentMethod.Type"),
]


def run_request(stack, info, request, transaction_id):
    """Through the intake: (the refusal, None) or (None, the execution that ran), and the processor calls made."""
    calls_before = stack.runtime.invocations.count("PaymentCallProcessor")
    try:
        arn = operations.start_payment(info, request)
    except PaymentRefused as refusal:
        return refusal, None, stack.runtime.invocations.count("PaymentCallProcessor") - calls_before
    execution = operations.wait_for_execution(info, arn)
    return None, execution, stack.runtime.invocations.count("PaymentCallProcessor") - calls_before


def assert_nothing_happened(info, transaction_id, processor_calls):
    assert operations.ledger_entries(info, transaction_id) == []
    assert operations.vault_item(info, transaction_id) is None
    assert operations.trace_payment(info, transaction_id).description is None  # no execution
    assert processor_calls == 0


@pytest.mark.parametrize(("case", "mutate", "field"), CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_input_is_refused_by_the_intake_naming_the_field(stack, info, case, mutate, field):
    transaction_id = new_transaction_id("bad")
    request = valid(transaction_id)
    mutate(request)

    refusal, execution, processor_calls = run_request(stack, info, request, transaction_id)

    assert execution is None, case
    assert isinstance(refusal, InvalidPaymentRequest)
    assert refusal.field == field and refusal.reason
    assert_nothing_happened(info, transaction_id, processor_calls)


def start_directly(info, request):
    arn = info.client("stepfunctions").start_execution(
        stateMachineArn=info.state_machine_arn, name=request["TransactionID"], input=json.dumps(request)
    )["executionArn"]
    return operations.wait_for_execution(info, arn), operations.execution_history(info, arn)


@pytest.mark.parametrize(
    "method",
    [
        {"Type": "card", "Number": VISA, "ExpiryMonth": 12, "ExpiryYear": 2099, "Cvv": "123"},
        {"Type": "processor_token", "Number": VISA},
        {"Number": VISA, "Cvv": "123"},
    ],
    ids=["card", "card-number-beside-a-token", "no-type"],
)
def test_a_card_sent_straight_to_start_execution_is_refused_by_tokenize(stack, info, method):
    transaction_id = new_transaction_id("direct")
    calls_before = stack.runtime.invocations.count("PaymentCallProcessor")

    execution, history = start_directly(info, valid(transaction_id) | {"PaymentMethod": method})

    assert execution["status"] == "FAILED" and execution["error"] == "InvalidPaymentRequest"
    cause = json.loads(execution["cause"])
    assert cause["Field"] == "PaymentMethod" and "intake" in cause["Message"]
    assert [e["taskFailedEventDetails"]["error"] for e in history if e["type"] == "TaskFailed"] == [
        "InvalidPaymentRequest"
    ]
    assert operations.ledger_entries(info, transaction_id) == []
    assert stack.runtime.invocations.count("PaymentCallProcessor") == calls_before


def test_a_token_payment_may_start_directly_and_its_bad_fields_are_named(stack, info):
    transaction_id = new_transaction_id("direct")
    request = token_request("7595301425001111", transaction_id, amount="25.001")

    execution, _ = start_directly(info, request)

    assert execution["status"] == "FAILED" and json.loads(execution["cause"])["Field"] == "Amount"
    assert operations.ledger_entries(info, transaction_id) == []


def json_values():
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=6,
    )


PATHS = [
    ("TransactionID",),
    ("Amount",),
    ("Currency",),
    ("ProcessorID",),
    ("Description",),
    (PM,),
    (PM, "Type"),
    (PM, "Number"),
    (PM, "ExpiryMonth"),
    (PM, "ExpiryYear"),
    (PM, "Cvv"),
    (PM, "HolderName"),
]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None)
@given(path=st.sampled_from(PATHS), value=json_values())
def test_any_value_anywhere_is_refused_cleanly_or_accepted(stack, info, path, value):
    transaction_id = new_transaction_id("fuzz")
    request = copy.deepcopy(valid(transaction_id))
    at(path, value)(request)

    refusal, execution, processor_calls = run_request(stack, info, request, transaction_id)

    if execution is not None:
        assert execution["status"] == "SUCCEEDED"  # the value happened to be valid
        return
    assert isinstance(refusal, InvalidPaymentRequest) and refusal.field
    assert_nothing_happened(info, transaction_id, processor_calls)


def test_a_warm_tokenize_logs_a_rejection_under_no_other_payments_id(stack, info):
    # Given a payment that went through Tokenize, setting its correlation id
    paid = card_request(new_transaction_id("warm"))
    operations.wait_for_execution(info, operations.start_payment(info, paid))

    # When the same warm Tokenize then rejects a card sent straight to StartExecution
    rejected = valid(new_transaction_id("direct"))
    start_directly(info, rejected)

    # Then the rejection is logged under no correlation id at all, least of all the earlier payment's
    # (Powertools' JSON lines: the runtime's own, for a library's warning, are `[LEVEL]<tab>...`)
    tokenize_lines = [
        json.loads(line.text)
        for line in stack.logs.lines
        if line.function_name == "PaymentTokenize" and line.text.startswith("{")
    ]
    rejections = [line for line in tokenize_lines if line.get("message") == "payment request rejected"]
    assert rejections, [line.get("message") for line in tokenize_lines]
    rejection = rejections[-1]
    assert rejection.get("correlation_id") is None
    assert paid["TransactionID"] not in json.dumps(rejection)
