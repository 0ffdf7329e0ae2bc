//! Free text a user attaches to something: a cancellation reason, a review comment.

use super::{InvalidValue, bounded_text};

/// Up to 2,000 characters of trimmed text without control characters (line breaks and tabs
/// allowed). Blank text is no note at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note(String);

impl Note {
    pub const MAX_CHARS: usize = 2_000;

    /// `None` for blank text.
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidValue> {
        let text = bounded_text(raw, 0, Self::MAX_CHARS, "the text")?;
        Ok((!text.is_empty()).then_some(Self(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_text_is_no_note() {
        assert_eq!(Note::parse("   "), Ok(None));
        assert_eq!(
            Note::parse(" late bus \n").map(|n| n.map(Note::into_string)),
            Ok(Some("late bus".to_owned()))
        );
    }

    #[test]
    fn long_or_control_text_is_refused() {
        assert!(Note::parse(&"é".repeat(2_000)).is_ok());
        assert!(Note::parse(&"é".repeat(2_001)).is_err());
        assert!(Note::parse("a\u{0}b").is_err());
        assert!(Note::parse("line one\nline two\tend").is_ok());
    }
}
