use std::fmt;

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// Active ISO 4217 currency codes (funds and precious-metal codes left out).
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
    "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP",
    "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD",
    "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY",
    "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD",
    "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK",
    "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG",
    "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS",
    "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// An ISO 4217 currency code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(&'static str);

impl Currency {
    pub const BRL: Self = Self("BRL");

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let upper = raw.trim().to_ascii_uppercase();
        ISO_4217
            .iter()
            .find(|code| **code == upper)
            .map(|code| Self(code))
            .ok_or_else(|| InvalidValue::new("must be an ISO 4217 currency code, such as BRL"))
    }

    pub fn code(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// An amount of money in integer minor units of a currency (`12000` BRL cents is R$ 120.00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    amount_cents: i64,
    currency: Currency,
}

/// The JSON shape of money, in and out: `{"amount_cents": 12000, "currency": "BRL"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MoneyDto {
    pub amount_cents: i64,
    pub currency: String,
}

impl Money {
    /// The largest hourly price accepted: 1,000,000.00 in any currency.
    pub const MAX_CENTS: i64 = 100_000_000;

    pub fn new(amount_cents: i64, currency: Currency) -> Result<Self, InvalidValue> {
        if !(0..=Self::MAX_CENTS).contains(&amount_cents) {
            return Err(InvalidValue::new(format!(
                "amount_cents must be between 0 and {}",
                Self::MAX_CENTS
            )));
        }
        Ok(Self {
            amount_cents,
            currency,
        })
    }

    /// Nothing, in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Self {
            amount_cents: 0,
            currency,
        }
    }

    pub fn parse(dto: &MoneyDto) -> Result<Self, InvalidValue> {
        Self::new(dto.amount_cents, Currency::parse(&dto.currency)?)
    }

    pub fn amount_cents(self) -> i64 {
        self.amount_cents
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    /// The price of `minutes` at this hourly rate, rounded half up to the minor unit.
    pub fn for_minutes(self, minutes: u32) -> Self {
        let numerator = i128::from(self.amount_cents) * i128::from(minutes);
        let cents = (numerator + 30) / 60;
        Self {
            amount_cents: i64::try_from(cents).unwrap_or(i64::MAX),
            currency: self.currency,
        }
    }

    pub fn to_dto(self) -> MoneyDto {
        MoneyDto {
            amount_cents: self.amount_cents,
            currency: self.currency.code().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brl(cents: i64) -> Money {
        Money::new(cents, Currency::BRL).expect("valid")
    }

    #[test]
    fn currency_codes_are_checked_and_upper_cased() {
        assert_eq!(Currency::parse("brl").map(Currency::code), Ok("BRL"));
        assert!(Currency::parse("XYZ").is_err());
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn amounts_must_be_non_negative_and_bounded() {
        assert!(Money::new(-1, Currency::BRL).is_err());
        assert!(Money::new(Money::MAX_CENTS + 1, Currency::BRL).is_err());
        assert!(Money::new(0, Currency::BRL).is_ok());
    }

    #[test]
    fn prices_for_minutes_round_half_up() {
        assert_eq!(brl(12_000).for_minutes(60).amount_cents(), 12_000);
        assert_eq!(brl(12_000).for_minutes(90).amount_cents(), 18_000);
        // 100 cents/h for 45 min = 75 cents exactly; 1 cent/h for 30 min = 0.5 → 1.
        assert_eq!(brl(100).for_minutes(45).amount_cents(), 75);
        assert_eq!(brl(1).for_minutes(30).amount_cents(), 1);
        // 1 cent/h for 29 min = 0.483… → 0.
        assert_eq!(brl(1).for_minutes(29).amount_cents(), 0);
        assert_eq!(
            brl(Money::MAX_CENTS).for_minutes(1440).amount_cents(),
            2_400_000_000
        );
    }
}
