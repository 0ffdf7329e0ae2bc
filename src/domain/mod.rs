//! Pure types and rules of the product: parsed once at the edge, trusted everywhere after.
//! Nothing in here performs I/O.

pub mod availability;
mod email;
mod local_time;
mod money;
mod note;
mod password;
mod profile;
mod role;
mod session;
pub mod slots;
mod tag;
mod timezone;

pub use email::Email;
pub use money::{Currency, Money, MoneyDto};
pub use note::Note;
pub use password::Password;
pub use profile::{Bio, Institution, PersonName, Specializations};
pub use role::Role;
pub use session::{PaymentStatus, SessionStatus};
pub use tag::TutorTag;
pub use timezone::TimeZone;

/// Why a raw value was refused; the message is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

impl InvalidValue {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// An instant written as RFC 3339 with an offset (`2026-12-01T14:00:00Z`,
/// `2026-12-01T11:00:00-03:00`), in UTC.
pub fn parse_instant(raw: &str) -> Result<chrono::DateTime<chrono::Utc>, InvalidValue> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|at| at.with_timezone(&chrono::Utc))
        .map_err(|_| {
            InvalidValue::new(
                "must be an RFC 3339 instant with an offset, such as 2026-12-01T14:00:00Z",
            )
        })
}

/// Trims `raw` and checks it has `min..=max` characters and no control characters.
fn bounded_text(raw: &str, min: usize, max: usize, what: &str) -> Result<String, InvalidValue> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars < min {
        return Err(if min == 1 {
            InvalidValue::new(format!("{what} must not be empty"))
        } else {
            InvalidValue::new(format!("{what} must have at least {min} characters"))
        });
    }
    if chars > max {
        return Err(InvalidValue::new(format!(
            "{what} must have at most {max} characters"
        )));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(InvalidValue::new(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(trimmed.to_owned())
}
