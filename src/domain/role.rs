use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// The two kinds of account. The "teacher" of the Mentoria API is the same role as `Tutor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Student,
    Tutor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Student => "student",
            Self::Tutor => "tutor",
        }
    }

    /// Reads a login's `user_type`, where `"teacher"` means `Tutor`.
    pub fn parse_user_type(raw: &str) -> Result<Self, InvalidValue> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "student" => Ok(Self::Student),
            "tutor" | "teacher" => Ok(Self::Tutor),
            _ => Err(InvalidValue::new("must be `student`, `tutor` or `teacher`")),
        }
    }
}

impl FromStr for Role {
    type Err = InvalidValue;

    /// Reads a stored or registered role (`student` or `tutor`).
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "student" => Ok(Self::Student),
            "tutor" => Ok(Self::Tutor),
            _ => Err(InvalidValue::new("must be `student` or `tutor`")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teacher_is_a_synonym_of_tutor_in_user_type() {
        assert_eq!(Role::parse_user_type("teacher"), Ok(Role::Tutor));
        assert_eq!(Role::parse_user_type("Tutor"), Ok(Role::Tutor));
        assert_eq!(Role::parse_user_type("student"), Ok(Role::Student));
        assert!(Role::parse_user_type("admin").is_err());
        assert!("teacher".parse::<Role>().is_err());
    }
}
