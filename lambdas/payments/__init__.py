"""The payment domain shared by every step Lambda.

Pure modules (models, validation, cards, currencies, normalization, responses) have no
boto3 import; the adapters (`aws`, `crypto`, `ledger`, `audit`, `processors`) are the only
code that talks to AWS or to the card processor.
"""
