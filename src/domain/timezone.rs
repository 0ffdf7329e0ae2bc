use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;

use super::InvalidValue;

/// An IANA time zone (`America/Sao_Paulo`), in which a tutor states their hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(Tz);

impl TimeZone {
    pub const UTC: Self = Self(Tz::UTC);

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        Tz::from_str(raw.trim()).map(Self).map_err(|_| {
            InvalidValue::new("must be an IANA time zone name, such as America/Sao_Paulo")
        })
    }

    pub fn tz(self) -> Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_names_parse_and_others_do_not() {
        assert_eq!(
            TimeZone::parse("America/Sao_Paulo").map(TimeZone::name),
            Ok("America/Sao_Paulo")
        );
        assert_eq!(TimeZone::parse("UTC"), Ok(TimeZone::UTC));
        assert!(TimeZone::parse("Mars/Olympus_Mons").is_err());
        assert!(TimeZone::parse("").is_err());
    }
}
