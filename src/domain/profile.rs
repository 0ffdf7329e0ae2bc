//! The free-text parts of an account and a tutor profile.

use std::collections::HashSet;

use super::{InvalidValue, bounded_text};

/// A person's display name: 1 to 200 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded_text(raw, 1, 200, "a name").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a tutor teaches: up to 200 characters, may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Institution(String);

impl Institution {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded_text(raw, 0, 200, "an institution").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tutor's biography: up to 5,000 characters, may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bio(String);

impl Bio {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded_text(raw, 0, 5_000, "a bio").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a tutor teaches: up to 20 distinct subjects of 1 to 100 characters each. Duplicates
/// (compared case-insensitively) are dropped, keeping the first spelling.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Specializations(Vec<String>);

impl Specializations {
    pub const MAX_ITEMS: usize = 20;

    pub fn parse(raw: &[String]) -> Result<Self, InvalidValue> {
        let too_many =
            || InvalidValue::new(format!("must list at most {} subjects", Self::MAX_ITEMS));
        // Duplicates aside, a much longer list cannot be valid: refuse it before any work.
        if raw.len() > 5 * Self::MAX_ITEMS {
            return Err(too_many());
        }
        let mut seen = HashSet::with_capacity(raw.len());
        let mut items: Vec<String> = Vec::with_capacity(Self::MAX_ITEMS);
        for subject in raw {
            let subject = bounded_text(subject, 1, 100, "a specialization")?;
            if seen.insert(subject.to_lowercase()) {
                if items.len() == Self::MAX_ITEMS {
                    return Err(too_many());
                }
                items.push(subject);
            }
        }
        Ok(Self(items))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("  Ana  ").map(|n| n.0), Ok("Ana".into()));
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"a".repeat(201)).is_err());
        assert!(PersonName::parse("Ana\u{0}").is_err());
    }

    #[test]
    fn specializations_drop_case_insensitive_duplicates() {
        let parsed = Specializations::parse(&["Math".into(), "math".into(), "Physics".into()])
            .expect("valid");
        assert_eq!(parsed.as_slice(), ["Math", "Physics"]);
        assert!(Specializations::parse(&[" ".into()]).is_err());
        let many: Vec<String> = (0..21).map(|i| format!("s{i}")).collect();
        assert!(Specializations::parse(&many).is_err());
    }
}
