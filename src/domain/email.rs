use std::fmt;

use super::InvalidValue;

/// An e-mail address as the user typed it (trimmed). Uniqueness and look-ups compare it
/// case-insensitively, which the database does (`lower(email)`), so the user's spelling is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let email = raw.trim();
        let invalid = || InvalidValue::new("must be an e-mail address such as ana@example.com");
        if email.len() > 254 {
            return Err(InvalidValue::new("must have at most 254 bytes"));
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        let well_formed = !local.is_empty()
            && local.len() <= 64
            && !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && !local.contains('@');
        if !well_formed {
            return Err(invalid());
        }
        Ok(Self(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_addresses_are_accepted_and_trimmed() {
        assert_eq!(
            Email::parse(" Ana@Example.com ").map(|e| e.0),
            Ok("Ana@Example.com".into())
        );
        assert!(Email::parse("a.b+c@sub.example.org").is_ok());
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for raw in [
            "",
            "ana",
            "@example.com",
            "ana@",
            "a na@example.com",
            "ana@.com",
            "a@b@c",
            "ana@x..com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} should be refused");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
