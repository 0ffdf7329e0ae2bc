//! Accounts (both roles), tutor profiles and student↔tutor links.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::{links, tutors};
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
            links::lock_active_tutor(&mut tx, id)
                .await?
                .ok_or(CreateAccountError::TutorInactive)?,
        ),
        Some(LinkTo::Tag(tag)) => Some(
            links::lock_active_tutor_by_tag(&mut tx, &tag)
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
        tutors::insert_profile(&mut tx, id, profile).await?;
    }
    if let Some(tutor_id) = link_tutor {
        links::link(&mut *tx, id, tutor_id).await?;
    }
    let account = find_in(&mut *tx, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    tx.commit().await?;
    Ok(account)
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

/// Whether an account uses this e-mail (compared case-insensitively).
pub async fn email_taken(pool: &PgPool, email: &Email) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1))")
        .bind(email.as_str())
        .fetch_one(pool)
        .await
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

/// Whether the account exists and is not deactivated.
pub async fn is_active(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND deactivated_at IS NULL)",
    )
    .bind(id)
    .fetch_one(pool)
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
    /// With a new password: end every other session of the account, keeping this token's.
    pub keep_only_session: Option<Uuid>,
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

/// An account after a change, with the tokens the change revoked and, when a tutor's time zone
/// changed, the event that announced it.
#[derive(Debug)]
pub struct Updated {
    pub account: Account,
    pub revoked: Vec<(Uuid, DateTime<Utc>)>,
    pub timezone_seq: Option<i64>,
}

/// Applies `changes` to an active account in one transaction; `None` when it is not active.
pub async fn update(
    pool: &PgPool,
    id: Uuid,
    changes: &AccountChanges,
) -> sqlx::Result<Option<Updated>> {
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
    let timezone_seq = match changes.timezone {
        // The rules share the profile's zone: their free time moved.
        Some(_) => Some(
            sqlx::query_scalar(
                "SELECT tutoring_emit($1, 'availability.changed', NULL, NULL, NULL, NULL)",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?,
        ),
        None => None,
    };
    let account = find_in(&mut *tx, id).await?;
    // Last, so the revocations' stamp is close to the commit that other nodes poll for.
    let revoked = match changes.keep_only_session {
        Some(keep) => super::auth_sessions::revoke_all_but(&mut *tx, id, keep).await?,
        None => Vec::new(),
    };
    tx.commit().await?;
    Ok(account.map(|account| Updated {
        account,
        revoked,
        timezone_seq,
    }))
}

/// Deactivates an active account of `role` and cancels its future scheduled sessions, in one
/// transaction. Returns the cancelled sessions as `(session id, tutor id)`, or `None` when there
/// was no such active account.
pub async fn deactivate(
    pool: &PgPool,
    id: Uuid,
    role: Role,
) -> sqlx::Result<Option<Vec<(Uuid, Uuid)>>> {
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
    // Each cancellation is announced in its tutor's sequence, tutors in id order (see the
    // `tutoring_emit` migration for why the order matters).
    let cancelled: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "WITH cancelled AS ( \
             UPDATE sessions SET status = 'cancelled', cancelled_at = now(), \
                                 cancelled_reason = $2, updated_at = now() \
             WHERE (tutor_id = $1 OR student_id = $1) AND status = 'scheduled' \
               AND scheduled_at > now() \
             RETURNING id, tutor_id, student_id, scheduled_at, ends_at) \
         SELECT id, tutor_id FROM ( \
             SELECT id, tutor_id, \
                    tutoring_emit(tutor_id, 'slot.released', scheduled_at, ends_at, id, student_id) \
             FROM (SELECT * FROM cancelled ORDER BY tutor_id, scheduled_at OFFSET 0) ordered \
         ) announced",
    )
    .bind(id)
    .bind(reason)
    .fetch_all(&mut *tx)
    .await?;
    if role == Role::Tutor {
        // Other processes learn that this tutor has no free time any more.
        sqlx::query("SELECT tutoring_emit($1, 'availability.changed', NULL, NULL, NULL, NULL)")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    // Stamped again last, by the clock: other nodes poll for deactivations stamped since shortly
    // before their last poll, so the stamp must be close to the commit.
    sqlx::query("UPDATE users SET deactivated_at = clock_timestamp() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(cancelled))
}

/// Filters of the public tutor catalogue.
#[derive(Debug, Default, Clone, Copy)]
pub struct CatalogueFilter<'a> {
    /// A subject the tutor lists (compared case-insensitively).
    pub specialization: Option<&'a str>,
    pub max_price_cents: Option<i64>,
}

/// One page of active tutors, oldest first, after the `(created_at, id)` cursor.
pub async fn catalogue(
    pool: &PgPool,
    filter: &CatalogueFilter<'_>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Account>> {
    let rows: Vec<AccountRow> = sqlx::query_as(select_account!(
        "WHERE u.role = 'tutor' AND u.deactivated_at IS NULL \
           AND ($1::text IS NULL OR EXISTS ( \
                SELECT 1 FROM unnest(t.specialization) AS s WHERE lower(s) = lower($1))) \
           AND ($2::bigint IS NULL OR t.price_cents <= $2) \
           AND ($3::timestamptz IS NULL OR (u.created_at, u.id) > ($3, $4)) \
         ORDER BY u.created_at, u.id LIMIT $5"
    ))
    .bind(filter.specialization)
    .bind(filter.max_price_cents)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Account::from).collect())
}

/// The active tutor with this id.
pub async fn find_active_tutor(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Account>> {
    let row: Option<AccountRow> = sqlx::query_as(select_account!(
        "WHERE u.id = $1 AND u.role = 'tutor' AND u.deactivated_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Account::from))
}
