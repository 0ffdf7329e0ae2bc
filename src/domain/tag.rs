use std::fmt;

use super::InvalidValue;

/// A tutor's tag: four decimal digits (`"0427"`), unique among all tutors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TutorTag(String);

impl TutorTag {
    /// How many tags exist; when all are taken, no tutor can be created.
    pub const SPACE: u16 = 10_000;

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let raw = raw.trim();
        if raw.len() == 4 && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidValue::new(
                "must be four decimal digits, such as \"0427\"",
            ))
        }
    }

    /// The tag numbered `n` (taken modulo the tag space).
    pub fn from_number(n: u16) -> Self {
        Self(format!("{:04}", n % Self::SPACE))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TutorTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_four_digits_with_leading_zeros() {
        assert_eq!(TutorTag::from_number(42).as_str(), "0042");
        assert_eq!(TutorTag::parse("0427").map(|t| t.0), Ok("0427".into()));
        for raw in ["427", "04270", "04a7", "", "٠١٢٣"] {
            assert!(TutorTag::parse(raw).is_err(), "{raw:?} should be refused");
        }
    }
}
