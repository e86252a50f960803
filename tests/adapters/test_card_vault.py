"""The CardVault against DynamoDB and KMS: the card in ciphertext only, the CVV removable, the item removable."""

import dataclasses
import json
import time

import boto3
import pytest

from local.payment_requests import TEST_CVV, VISA
from payments import crypto, topology
from payments.vault import CardNotInVault, CardVault, VaultedCard
from tests.adapters.conftest import REGION, items_of

TABLE = topology.CARD_VAULT_TABLE.name
CARD = VaultedCard(VISA, 12, 2031, "Ada Lovelace")


@pytest.fixture
def key_arn(aws):
    return boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]


@pytest.fixture
def vault(tables_with_vault, key_arn):
    return CardVault(TABLE, key_arn, ttl_seconds=900, client=tables_with_vault)


def test_a_card_is_vaulted_as_ciphertext_and_read_back(vault, dynamodb):
    assert vault.deposit("order-ab", CARD, TEST_CVV, "fp-1") is None

    [item] = items_of(dynamodb, TABLE, "order-ab")
    assert VISA not in json.dumps(item) and f'"{TEST_CVV}"' not in json.dumps(item)
    assert set(item) == {"TransactionID", "EncryptedCard", "EncryptedCvv", "RequestFingerprint", "ExpiresAt"}
    assert vault.card("order-ab") == dataclasses.replace(CARD, fingerprint="fp-1")
    assert vault.cvv("order-ab") == TEST_CVV


def test_a_second_deposit_changes_nothing_and_says_whose_card_is_there(vault, dynamodb):
    vault.deposit("order-ab", CARD, TEST_CVV, "fp-1")
    [before] = items_of(dynamodb, TABLE, "order-ab")

    assert vault.deposit("order-ab", CARD, TEST_CVV, "fp-1") == "fp-1"
    assert vault.deposit("order-ab", VaultedCard("5500000000000004", 1, 2032), "999", "fp-2") == "fp-1"
    assert items_of(dynamodb, TABLE, "order-ab") == [before]


def test_the_cvv_can_be_removed_and_is_then_gone(vault, dynamodb):
    vault.deposit("order-ab", CARD, TEST_CVV, "fp-1")

    vault.remove_cvv("order-ab")
    vault.remove_cvv("order-ab")  # again: a retried CallProcessor

    assert vault.cvv("order-ab") is None
    assert vault.card("order-ab").number == VISA
    [item] = items_of(dynamodb, TABLE, "order-ab")
    assert "EncryptedCvv" not in item


def test_removing_the_cvv_of_a_card_not_vaulted_creates_nothing(vault, dynamodb):
    vault.remove_cvv("order-ab")

    assert items_of(dynamodb, TABLE, "order-ab") == []


def test_a_forgotten_card_is_gone(vault, dynamodb):
    vault.deposit("order-ab", CARD, TEST_CVV, "fp-1")

    vault.forget("order-ab")
    vault.forget("order-ab")

    assert items_of(dynamodb, TABLE, "order-ab") == []
    with pytest.raises(CardNotInVault):
        vault.card("order-ab")
    assert vault.cvv("order-ab") is None


def test_a_vaulted_card_opens_only_for_its_own_payment(vault, dynamodb):
    # Given the ciphertexts of one payment copied under another TransactionID
    vault.deposit("order-ab", CARD, TEST_CVV, "fp-1")
    [item] = items_of(dynamodb, TABLE, "order-ab")
    dynamodb.put_item(TableName=TABLE, Item=item | {"TransactionID": {"S": "order-cd"}})

    # Then they cannot be opened there: the encryption context binds them to order-ab
    with pytest.raises(crypto.BoundToAnotherUse):
        vault.card("order-cd")


def test_an_expired_card_is_gone_even_before_dynamodb_removes_it(vault, tables_with_vault):
    # DynamoDB deletes expired items within days and serves them until then: the vault must not.
    vault.deposit("order-ab", CARD, TEST_CVV, "fp-1")
    tables_with_vault.update_item(
        TableName=TABLE,
        Key={"TransactionID": {"S": "order-ab"}},
        UpdateExpression="SET ExpiresAt = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )

    with pytest.raises(CardNotInVault):
        vault.card("order-ab")
    assert vault.cvv("order-ab") is None
