//! Reviews of completed sessions, and the tutor's running rating.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// A review as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReviewRecord {
    pub id: Uuid,
    pub session_id: Uuid,
    pub student_id: Uuid,
    pub tutor_id: Uuid,
    pub rating: i16,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Why a review was refused, besides what the database says.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("no such session")]
    SessionNotFound,
    #[error("only the session's student may review it")]
    NotTheStudent,
    #[error("the session is not completed")]
    NotCompleted,
}

/// Records a review of a completed session by its student and adds it to the tutor's rating,
/// in one transaction. A second review of the session breaks `reviews_session_id_key`.
pub async fn create(
    pool: &PgPool,
    student_id: Uuid,
    session_id: Uuid,
    rating: i16,
    comment: Option<&str>,
) -> Result<ReviewRecord, ReviewError> {
    let mut tx = pool.begin().await?;
    // Lock the session so a concurrent change of its status cannot slip in.
    let session: Option<(Uuid, Uuid, String)> =
        sqlx::query_as("SELECT tutor_id, student_id, status FROM sessions WHERE id = $1 FOR SHARE")
            .bind(session_id)
            .fetch_optional(&mut *tx)
            .await?;
    let (tutor_id, session_student, status) = session.ok_or(ReviewError::SessionNotFound)?;
    if session_student != student_id {
        return Err(ReviewError::NotTheStudent);
    }
    if status != "completed" {
        return Err(ReviewError::NotCompleted);
    }
    let review: ReviewRecord = sqlx::query_as(
        "INSERT INTO reviews (id, session_id, student_id, tutor_id, rating, comment) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         RETURNING id, session_id, student_id, tutor_id, rating, comment, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(session_id)
    .bind(student_id)
    .bind(tutor_id)
    .bind(rating)
    .bind(comment)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE tutors SET rating_count = rating_count + 1, rating_sum = rating_sum + $2 \
         WHERE user_id = $1",
    )
    .bind(tutor_id)
    .bind(i64::from(rating))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(review)
}

/// Whose reviews a list holds.
#[derive(Debug, Clone, Copy)]
pub enum ReviewsOf {
    Tutor(Uuid),
    Session(Uuid),
}

/// One page of reviews, newest first, after the `(created_at, id)` cursor.
pub async fn page(
    pool: &PgPool,
    of: ReviewsOf,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<ReviewRecord>> {
    let (column, id) = match of {
        ReviewsOf::Tutor(id) => ("tutor_id", id),
        ReviewsOf::Session(id) => ("session_id", id),
    };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, session_id, student_id, tutor_id, rating, comment, created_at \
         FROM reviews WHERE {column} = $1 \
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    )))
    .bind(id)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(pool)
    .await
}
