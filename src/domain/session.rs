use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::InvalidValue;

/// Where a session is in its life. `Scheduled` and `Completed` sessions are active: they hold
/// their time; a `Cancelled` one frees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Scheduled,
    Completed,
    Cancelled,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl FromStr for SessionStatus {
    type Err = InvalidValue;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "scheduled" => Ok(Self::Scheduled),
            "completed" => Ok(Self::Completed),
            "cancelled" => Ok(Self::Cancelled),
            _ => Err(InvalidValue::new(
                "must be `scheduled`, `completed` or `cancelled`",
            )),
        }
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a session has been paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Unpaid,
    Paid,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unpaid => "unpaid",
            Self::Paid => "paid",
            Self::Refunded => "refunded",
        }
    }
}

impl FromStr for PaymentStatus {
    type Err = InvalidValue;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "unpaid" => Ok(Self::Unpaid),
            "paid" => Ok(Self::Paid),
            "refunded" => Ok(Self::Refunded),
            _ => Err(InvalidValue::new("must be `unpaid`, `paid` or `refunded`")),
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in [
            SessionStatus::Scheduled,
            SessionStatus::Completed,
            SessionStatus::Cancelled,
        ] {
            assert_eq!(status.as_str().parse::<SessionStatus>(), Ok(status));
        }
        for status in [
            PaymentStatus::Unpaid,
            PaymentStatus::Paid,
            PaymentStatus::Refunded,
        ] {
            assert_eq!(status.as_str().parse::<PaymentStatus>(), Ok(status));
        }
        assert!("done".parse::<SessionStatus>().is_err());
    }
}
