"""Exact money: Decimal amounts with a currency, rounded once, half-up, to the currency's cents."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, field_validator

CENT = Decimal("0.01")

# Decimal in JSON as a string, never a float: "12.50".
ExactDecimal = Annotated[Decimal, PlainSerializer(lambda d: str(d), return_type=str, when_used="json")]


def round_money(amount: Decimal) -> Decimal:
    """The one rounding rule of the platform: half-up to the cent."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: ExactDecimal
    currency: str = "USD"

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("money must not be a float; pass a string or Decimal")
        return value

    @field_validator("currency")
    @classmethod
    def _iso(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise ValueError("currency must be a three-letter ISO 4217 code")
        return value.upper()

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def rounded(self) -> Money:
        return Money(amount=round_money(self.amount), currency=self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    @classmethod
    def zero(cls, currency: str = "USD") -> Money:
        return cls(amount=Decimal("0"), currency=currency)
