"""ISO 4217 currencies and their minor-unit exponents, and what each processor accepts."""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType

_EXPONENT_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_EXPONENT_3 = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENT_4 = "CLF UYW"
_EXPONENT_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN "
    "BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP "
    "GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP "
    "LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR "
    "NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN "
    "SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
)

ISO_4217_EXPONENTS: MappingProxyType[str, int] = MappingProxyType(
    {
        code: exponent
        for exponent, codes in ((0, _EXPONENT_0), (2, _EXPONENT_2), (3, _EXPONENT_3), (4, _EXPONENT_4))
        for code in codes.split()
    }
)

# The currencies our Converge terminal is set up for (multi-currency conversion off).
PROCESSOR_CURRENCIES: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {"elavon": frozenset({"USD", "CAD", "EUR", "GBP", "JPY", "AUD", "CHF", "MXN"})}
)


def exponent_of(currency: str) -> int:
    """Minor-unit exponent of an ISO 4217 code (2 for USD, 0 for JPY). KeyError if unknown."""
    return ISO_4217_EXPONENTS[currency]


def format_amount(amount: Decimal, currency: str) -> str:
    """The amount with exactly the currency's minor-unit digits: 25.00 USD is "25.00", 2500 JPY is "2500".

    Refuses an amount finer than the currency allows (ValueError) rather than round money.
    """
    exponent = exponent_of(currency)
    quantum = Decimal(1).scaleb(-exponent)
    exact = amount.quantize(quantum)
    if exact != amount:
        raise ValueError(f"{amount} has more decimals than {currency} allows ({exponent})")
    return f"{exact:f}"
