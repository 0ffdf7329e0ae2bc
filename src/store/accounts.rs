//! Accounts (both roles), tutor profiles and student↔tutor links.

use chrono::{DateTime, Utc};
use rand::RngExt;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::domain::{
    Bio, Email, Institution, Money, PersonName, Role, Specializations, TimeZone, TutorTag,
};

/// An account as stored, with its tutor profile when it is a tutor.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
    pub tutor: Option<TutorProfile>,
}

impl Account {
    pub fn is_active(&self) -> bool {
        self.deactivated_at.is_none()
    }
}

/// What only a tutor has.
#[derive(Debug, Clone)]
pub struct TutorProfile {
    pub tag: String,
    pub institution: String,
    pub bio: String,
    pub specialization: Vec<String>,
    pub price_cents: i64,
    pub currency: String,
    pub timezone: String,
    pub rating_count: i32,
    pub rating_sum: i64,
}

impl TutorProfile {
    /// The mean rating rounded to two decimals; `None` before the first review.
    pub fn rating_average(&self) -> Option<f64> {
        (self.rating_count > 0).then(|| {
            let mean = self.rating_sum as f64 / f64::from(self.rating_count);
            (mean * 100.0).round() / 100.0
        })
    }
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: Uuid,
    email: String,
    name: String,
    role: Role,
    created_at: DateTime<Utc>,
    deactivated_at: Option<DateTime<Utc>>,
    tag: Option<String>,
    institution: Option<String>,
    bio: Option<String>,
    specialization: Option<Vec<String>>,
    price_cents: Option<i64>,
    currency: Option<String>,
    timezone: Option<String>,
    rating_count: Option<i32>,
    rating_sum: Option<i64>,
}

impl From<AccountRow> for Account {
    fn from(row: AccountRow) -> Self {
        let tutor = match (row.role, row.tag) {
            (Role::Tutor, Some(tag)) => Some(TutorProfile {
                tag,
                institution: row.institution.unwrap_or_default(),
                bio: row.bio.unwrap_or_default(),
                specialization: row.specialization.unwrap_or_default(),
                price_cents: row.price_cents.unwrap_or_default(),
                currency: row.currency.unwrap_or_default(),
                timezone: row.timezone.unwrap_or_default(),
                rating_count: row.rating_count.unwrap_or_default(),
                rating_sum: row.rating_sum.unwrap_or_default(),
            }),
            _ => None,
        };
        Self {
            id: row.id,
            email: row.email,
            name: row.name,
            role: row.role,
            created_at: row.created_at,
            deactivated_at: row.deactivated_at,
            tutor,
        }
    }
}

/// Selects an account row; the argument is the rest of the statement.
macro_rules! select_account {
    ($rest:literal) => {
        concat!(
            "SELECT u.id, u.email, u.name, u.role, u.created_at, u.deactivated_at, \
                    t.tag, t.institution, t.bio, t.specialization, t.price_cents, t.currency, \
                    t.timezone, t.rating_count, t.rating_sum \
             FROM users u LEFT JOIN tutors t ON t.user_id = u.id ",
            $rest
        )
    };
}

/// A new account, parsed and with its password already hashed.
#[derive(Debug)]
pub struct NewAccount {
    pub email: Email,
    pub password_hash: String,
    pub name: PersonName,
    pub role: Role,
}

/// The profile of a new tutor.
#[derive(Debug, Clone)]
pub struct NewTutorProfile {
    pub institution: Institution,
    pub bio: Bio,
    pub specialization: Specializations,
    pub price: Money,
    pub timezone: TimeZone,
}

/// Why an account could not be created, besides what the database says.
#[derive(Debug, thiserror::Error)]
pub enum CreateAccountError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("all 10,000 tutor tags are in use")]
    TagsExhausted,
    #[error("no active tutor has that tag")]
    TagNotFound,
    #[error("the tutor to link to is not active")]
    TutorInactive,
}

/// What to link a new student to.
#[derive(Debug, Clone)]
pub enum LinkTo {
    Tutor(Uuid),
    Tag(TutorTag),
}

/// Creates an account in one transaction: the user, the tutor profile with a fresh tag and
/// default availability rules for a tutor, and the link to a tutor for a student.
pub async fn create(
    pool: &PgPool,
    new: &NewAccount,
    tutor: Option<&NewTutorProfile>,
    link_to: Option<LinkTo>,
) -> Result<Account, CreateAccountError> {
    let mut tx = pool.begin().await?;
    let link_tutor = match link_to {
        None => None,
        Some(LinkTo::Tutor(id)) => Some(
            lock_active_tutor(&mut tx, id)
                .await?
                .ok_or(CreateAccountError::TutorInactive)?,
        ),
        Some(LinkTo::Tag(tag)) => Some(
            lock_active_tutor_by_tag(&mut tx, &tag)
                .await?
                .ok_or(CreateAccountError::TagNotFound)?,
        ),
    };
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, name, role) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(new.email.as_str())
    .bind(&new.password_hash)
    .bind(new.name.as_str())
    .bind(new.role)
    .execute(&mut *tx)
    .await?;
    if let Some(profile) = tutor {
        insert_tutor_profile(&mut tx, id, profile).await?;
    }
    if let Some(tutor_id) = link_tutor {
        link(&mut *tx, id, tutor_id).await?;
    }
    let account = find_in(&mut *tx, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    tx.commit().await?;
    Ok(account)
}

/// How many random tags to try before scanning for a free one.
const RANDOM_TAG_ATTEMPTS: usize = 4;

async fn insert_tutor_profile(
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
            let free: Option<String> = sqlx::query_scalar(
                "SELECT lpad(n::text, 4, '0') FROM generate_series(0, 9999) AS n \
                 WHERE NOT EXISTS (SELECT 1 FROM tutors WHERE tag = lpad(n::text, 4, '0')) \
                 ORDER BY random() LIMIT 1",
            )
            .fetch_optional(&mut *conn)
            .await?;
            let free = free.ok_or(CreateAccountError::TagsExhausted)?;
            TutorTag::parse(&free).map_err(|e| sqlx::Error::Protocol(e.0))?
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

/// The account with this id, active or not.
pub async fn find(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Account>> {
    find_in(pool, id).await
}

async fn find_in(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Account>> {
    let row: Option<AccountRow> = sqlx::query_as(select_account!("WHERE u.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(Account::from))
}

/// What a login needs to know about an e-mail.
#[derive(Debug, sqlx::FromRow)]
pub struct Credentials {
    pub id: Uuid,
    pub role: Role,
    pub password_hash: String,
    pub deactivated_at: Option<DateTime<Utc>>,
}

/// The credentials of the account with this e-mail (compared case-insensitively).
pub async fn find_credentials(pool: &PgPool, email: &str) -> sqlx::Result<Option<Credentials>> {
    sqlx::query_as(
        "SELECT id, role, password_hash, deactivated_at FROM users WHERE lower(email) = lower($1)",
    )
    .bind(email.trim())
    .fetch_optional(pool)
    .await
}

/// The password hash of an active account.
pub async fn password_hash(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1 AND deactivated_at IS NULL")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// A change to an account; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct AccountChanges {
    pub name: Option<PersonName>,
    pub email: Option<Email>,
    pub password_hash: Option<String>,
    pub institution: Option<Institution>,
    pub bio: Option<Bio>,
    pub specialization: Option<Specializations>,
    pub price: Option<Money>,
    pub timezone: Option<TimeZone>,
}

impl AccountChanges {
    pub fn touches_tutor_profile(&self) -> bool {
        self.institution.is_some()
            || self.bio.is_some()
            || self.specialization.is_some()
            || self.price.is_some()
            || self.timezone.is_some()
    }
}

/// Applies `changes` to an active account in one transaction; `None` when it is not active.
pub async fn update(
    pool: &PgPool,
    id: Uuid,
    changes: &AccountChanges,
) -> sqlx::Result<Option<Account>> {
    let mut tx = pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE users SET name = COALESCE($2, name), email = COALESCE($3, email), \
                          password_hash = COALESCE($4, password_hash), updated_at = now() \
         WHERE id = $1 AND deactivated_at IS NULL",
    )
    .bind(id)
    .bind(changes.name.as_ref().map(PersonName::as_str))
    .bind(changes.email.as_ref().map(Email::as_str))
    .bind(changes.password_hash.as_deref())
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(None);
    }
    if changes.touches_tutor_profile() {
        sqlx::query(
            "UPDATE tutors SET institution = COALESCE($2, institution), bio = COALESCE($3, bio), \
                               specialization = COALESCE($4, specialization), \
                               price_cents = COALESCE($5, price_cents), \
                               currency = COALESCE($6, currency), \
                               timezone = COALESCE($7, timezone) \
             WHERE user_id = $1",
        )
        .bind(id)
        .bind(changes.institution.as_ref().map(Institution::as_str))
        .bind(changes.bio.as_ref().map(Bio::as_str))
        .bind(
            changes
                .specialization
                .as_ref()
                .map(Specializations::as_slice),
        )
        .bind(changes.price.map(Money::amount_cents))
        .bind(changes.price.map(|p| p.currency().code()))
        .bind(changes.timezone.map(TimeZone::name))
        .execute(&mut *tx)
        .await?;
    }
    let account = find_in(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(account)
}

/// Deactivates an active account of `role` and cancels its future scheduled sessions, in one
/// transaction. Returns the ids of the cancelled sessions, or `None` when there was no such
/// active account.
pub async fn deactivate(pool: &PgPool, id: Uuid, role: Role) -> sqlx::Result<Option<Vec<Uuid>>> {
    let mut tx = pool.begin().await?;
    let deactivated = sqlx::query(
        "UPDATE users SET deactivated_at = now(), updated_at = now() \
         WHERE id = $1 AND role = $2 AND deactivated_at IS NULL",
    )
    .bind(id)
    .bind(role)
    .execute(&mut *tx)
    .await?;
    if deactivated.rows_affected() == 0 {
        return Ok(None);
    }
    let reason = match role {
        Role::Tutor => "the tutor's account was deactivated",
        Role::Student => "the student's account was deactivated",
    };
    let cancelled: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET status = 'cancelled', cancelled_at = now(), cancelled_reason = $2, \
                             updated_at = now() \
         WHERE (tutor_id = $1 OR student_id = $1) AND status = 'scheduled' \
           AND scheduled_at > now() \
         RETURNING id",
    )
    .bind(id)
    .bind(reason)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(cancelled))
}

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
