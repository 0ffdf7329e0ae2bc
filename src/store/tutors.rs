//! Tutor profiles: creation with a fresh, unique tag.

use rand::RngExt;
use sqlx::PgConnection;
use uuid::Uuid;

use super::accounts::{CreateAccountError, NewTutorProfile};
use crate::domain::TutorTag;

/// How many random tags to try before scanning for a free one.
const RANDOM_TAG_ATTEMPTS: usize = 4;

/// Inserts the tutor profile of `user_id` with a random free tag, and its default availability
/// rules.
pub async fn insert_profile(
    conn: &mut PgConnection,
    user_id: Uuid,
    profile: &NewTutorProfile,
) -> Result<TutorTag, CreateAccountError> {
    // Random guesses succeed at once while tags are plentiful; once they get scarce, pick among
    // the free ones. The unique constraint settles races: a conflicting insert does nothing and
    // we try again, so a duplicate tag can never be stored.
    let mut attempt = 0;
    loop {
        let candidate = if attempt < RANDOM_TAG_ATTEMPTS {
            TutorTag::from_number(rand::rng().random_range(0..TutorTag::SPACE))
        } else {
            let free: Option<i32> = sqlx::query_scalar(
                "SELECT n FROM generate_series(0, 9999) AS n \
                 WHERE NOT EXISTS (SELECT 1 FROM tutors WHERE tag = lpad(n::text, 4, '0')) \
                 ORDER BY random() LIMIT 1",
            )
            .fetch_optional(&mut *conn)
            .await?;
            let free = free.ok_or(CreateAccountError::TagsExhausted)?;
            TutorTag::from_number(u16::try_from(free).unwrap_or_default())
        };
        attempt += 1;
        let inserted: Option<String> = sqlx::query_scalar(
            "INSERT INTO tutors (user_id, tag, institution, bio, specialization, price_cents, \
                                 currency, timezone) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (tag) DO NOTHING RETURNING tag",
        )
        .bind(user_id)
        .bind(candidate.as_str())
        .bind(profile.institution.as_str())
        .bind(profile.bio.as_str())
        .bind(profile.specialization.as_slice())
        .bind(profile.price.amount_cents())
        .bind(profile.price.currency().code())
        .bind(profile.timezone.name())
        .fetch_optional(&mut *conn)
        .await?;
        if inserted.is_some() {
            sqlx::query("INSERT INTO availability_rules (tutor_id) VALUES ($1)")
                .bind(user_id)
                .execute(&mut *conn)
                .await?;
            return Ok(candidate);
        }
    }
}
