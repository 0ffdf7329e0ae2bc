//! Student↔tutor links, made through tutor tags.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::domain::TutorTag;

/// The id of the active tutor with `tag`, locking the account against a concurrent
/// deactivation until the transaction ends.
pub async fn lock_active_tutor_by_tag(
    conn: &mut PgConnection,
    tag: &TutorTag,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "SELECT u.id FROM tutors t JOIN users u ON u.id = t.user_id \
         WHERE t.tag = $1 AND u.deactivated_at IS NULL FOR SHARE OF u",
    )
    .bind(tag.as_str())
    .fetch_optional(conn)
    .await
}

/// The id of the active tutor with `tag`, without locking.
pub async fn active_tutor_by_tag(pool: &PgPool, tag: &TutorTag) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "SELECT u.id FROM tutors t JOIN users u ON u.id = t.user_id \
         WHERE t.tag = $1 AND u.deactivated_at IS NULL",
    )
    .bind(tag.as_str())
    .fetch_optional(pool)
    .await
}

/// `id` when it is an active tutor, locked like [`lock_active_tutor_by_tag`].
pub async fn lock_active_tutor(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "SELECT id FROM users WHERE id = $1 AND role = 'tutor' AND deactivated_at IS NULL FOR SHARE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Links a student to a tutor; `false` when they were already linked.
pub async fn link(db: impl PgExecutor<'_>, student_id: Uuid, tutor_id: Uuid) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO student_tutor_links (student_id, tutor_id) VALUES ($1, $2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(student_id)
    .bind(tutor_id)
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Why linking by tag failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("no active tutor has that tag")]
    TagNotFound,
    #[error("the student is already linked to that tutor")]
    AlreadyLinked,
    #[error("the student's account is not active")]
    StudentInactive,
}

/// Links an active student to the active tutor with `tag`.
pub async fn link_by_tag(pool: &PgPool, student_id: Uuid, tag: &TutorTag) -> Result<(), LinkError> {
    let mut tx = pool.begin().await?;
    let active: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM users WHERE id = $1 AND deactivated_at IS NULL FOR SHARE",
    )
    .bind(student_id)
    .fetch_optional(&mut *tx)
    .await?;
    if active.is_none() {
        return Err(LinkError::StudentInactive);
    }
    let tutor_id = lock_active_tutor_by_tag(&mut tx, tag)
        .await?
        .ok_or(LinkError::TagNotFound)?;
    if !link(&mut *tx, student_id, tutor_id).await? {
        return Err(LinkError::AlreadyLinked);
    }
    tx.commit().await?;
    Ok(())
}

/// A tutor as a linked student sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkedTutor {
    pub id: Uuid,
    pub tag: String,
    pub name: String,
    pub institution: String,
    pub linked_at: DateTime<Utc>,
}

/// The active tutors a student is linked to, oldest link first.
pub async fn linked_tutors(pool: &PgPool, student_id: Uuid) -> sqlx::Result<Vec<LinkedTutor>> {
    sqlx::query_as(
        "SELECT u.id, t.tag, u.name, t.institution, l.created_at AS linked_at \
         FROM student_tutor_links l \
         JOIN tutors t ON t.user_id = l.tutor_id JOIN users u ON u.id = t.user_id \
         WHERE l.student_id = $1 AND u.deactivated_at IS NULL \
         ORDER BY l.created_at, u.id",
    )
    .bind(student_id)
    .fetch_all(pool)
    .await
}

/// A student as their tutor sees them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkedStudent {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub linked_at: DateTime<Utc>,
}

/// One page of a tutor's active students, by link time, after the `(linked_at, id)` cursor.
pub async fn tutor_students(
    pool: &PgPool,
    tutor_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<LinkedStudent>> {
    sqlx::query_as(
        "SELECT u.id, u.name, u.created_at, l.created_at AS linked_at \
         FROM student_tutor_links l JOIN users u ON u.id = l.student_id \
         WHERE l.tutor_id = $1 AND u.deactivated_at IS NULL \
           AND ($2::timestamptz IS NULL OR (l.created_at, l.student_id) > ($2, $3)) \
         ORDER BY l.created_at, l.student_id LIMIT $4",
    )
    .bind(tutor_id)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(pool)
    .await
}
