from local.card_scan import TEST_CVV, TEST_PANS, card_data_in

__all__ = ["TEST_CVV", "TEST_PANS", "card_data_in"]
