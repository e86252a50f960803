"""Payments' ledger entries and audit records as the repositories chain them, and the forgeries tests make of them."""

from payments import chain
from payments.chain import GENESIS

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:PaymentWorkflow:order-ab"
STATUSES = ["PAYMENT-INITIATED", "PAYMENT-PENDING", "PAYMENT-SUCCESS"]


def ledger(statuses=STATUSES, transaction_id="order-ab"):
    """A payment's entries as LedgerRepository writes them: entry n linked to entry n-1."""
    entries, link = [], GENESIS
    for number, status in enumerate(statuses, start=1):
        values = {
            "TransactionID": transaction_id,
            "EntryNumber": number,
            "Status": status,
            "Amount": "25.00",
            "SecureToken": "AYADeJ-ciphertext",
            "ExecutionArn": EXECUTION,
        }
        entries.append(chain.sealed(chain.typed(values), link))
        link = entries[-1]["EntryHash"]["S"]
    return entries


def audit_trail(audit_ids, transaction_id="order-ab"):
    """Records as AuditRepository writes them: numbered and linked in write order."""
    records, link = [], GENESIS
    for seq, audit_id in enumerate(audit_ids, start=1):
        values = {"TransactionID": transaction_id, "AuditID": audit_id, "Operation": "ccsale", "ChainSeq": seq}
        records.append(chain.sealed(chain.typed(values), link))
        link = records[-1]["EntryHash"]["S"]
    return records


def rewritten(item, **changes):
    """A plain PutItem over the item: other values, the stored hashes copied as they were."""
    return {**item, **{name: {"S": value} for name, value in changes.items()}}


def resealed(item, prev_hash=None, **changes):
    """What someone who knows the format writes: other values and a recomputed EntryHash."""
    return chain.sealed(rewritten(item, **changes), prev_hash or item["PrevHash"]["S"])
