//! What the routes that create, change and deactivate accounts share (`/auth/register`,
//! `/teachers`, `/students`, `/user/{id}`).

use std::collections::HashMap;

use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::Auth;
use crate::domain::{
    Bio, Currency, Email, Institution, Money, MoneyDto, Password, PersonName, Role,
    Specializations, TimeZone,
};
use crate::error::{ApiError, FieldErrors};
use crate::payments::{Payments, refunds};
use crate::scheduling::{Changed, Registry};
use crate::store::accounts::{self, Account, LinkTo, NewAccount, NewTutorProfile};
use crate::store::links;

/// The body that creates an account: `/auth/register` (with `role`) and `/teachers`.
#[derive(Debug, Deserialize)]
pub struct NewAccountBody {
    pub email: String,
    pub password: String,
    pub name: String,
    pub role: Option<String>,
    pub institution: Option<String>,
    pub bio: Option<String>,
    pub specialization: Option<Vec<String>>,
    pub price_per_hour: Option<MoneyDto>,
    pub timezone: Option<String>,
}

impl NewAccountBody {
    pub fn tutor_fields(&self) -> TutorFields<'_> {
        TutorFields {
            institution: self.institution.as_deref(),
            bio: self.bio.as_deref(),
            specialization: self.specialization.as_deref(),
            price_per_hour: self.price_per_hour.as_ref(),
            timezone: self.timezone.as_deref(),
        }
    }
}

/// The optional profile fields of a tutor, as sent on creation or update.
#[derive(Debug, Default, Clone, Copy)]
pub struct TutorFields<'a> {
    pub institution: Option<&'a str>,
    pub bio: Option<&'a str>,
    pub specialization: Option<&'a [String]>,
    pub price_per_hour: Option<&'a MoneyDto>,
    pub timezone: Option<&'a str>,
}

impl TutorFields<'_> {
    /// Records, for a student, that these fields are only for tutors.
    pub fn refuse_for_student(&self, errors: &mut FieldErrors) {
        let sent = [
            ("institution", self.institution.is_some()),
            ("bio", self.bio.is_some()),
            ("specialization", self.specialization.is_some()),
            ("price_per_hour", self.price_per_hour.is_some()),
            ("timezone", self.timezone.is_some()),
        ];
        for (field, present) in sent {
            if present {
                errors.push(field, "only tutors have this field");
            }
        }
    }
}

/// The parsed tutor fields that were sent.
#[derive(Debug, Default)]
pub struct TutorChanges {
    pub institution: Option<Institution>,
    pub bio: Option<Bio>,
    pub specialization: Option<Specializations>,
    pub price: Option<Money>,
    pub timezone: Option<TimeZone>,
}

/// Parses whichever tutor fields were sent, recording errors.
pub fn parse_tutor_changes(errors: &mut FieldErrors, fields: TutorFields<'_>) -> TutorChanges {
    TutorChanges {
        institution: fields
            .institution
            .and_then(|v| errors.check("institution", Institution::parse(v))),
        bio: fields.bio.and_then(|v| errors.check("bio", Bio::parse(v))),
        specialization: fields
            .specialization
            .and_then(|v| errors.check("specialization", Specializations::parse(v))),
        price: fields
            .price_per_hour
            .and_then(|v| errors.check("price_per_hour", Money::parse(v))),
        timezone: fields
            .timezone
            .and_then(|v| errors.check("timezone", TimeZone::parse(v))),
    }
}

impl TutorChanges {
    /// A new tutor's profile: what was sent, with defaults for the rest (free of charge in BRL,
    /// in UTC, until the tutor says otherwise).
    pub fn into_new_profile(self) -> NewTutorProfile {
        NewTutorProfile {
            institution: self.institution.unwrap_or_default(),
            bio: self.bio.unwrap_or_default(),
            specialization: self.specialization.unwrap_or_default(),
            price: self.price.unwrap_or(Money::zero(Currency::BRL)),
            timezone: self.timezone.unwrap_or(TimeZone::UTC),
        }
    }
}

/// The credentials and name of a new account, parsed.
pub fn parse_new_account(
    errors: &mut FieldErrors,
    email: &str,
    password: &str,
    name: &str,
) -> Option<(Email, Password, PersonName)> {
    let email = errors.check("email", Email::parse(email));
    let password = errors.check("password", Password::parse(password.to_owned()));
    let name = errors.check("name", PersonName::parse(name));
    Some((email?, password?, name?))
}

/// Hashes the password off the request threads and creates the account.
pub async fn create_account(
    db: &PgPool,
    auth: &Auth,
    (email, password, name): (Email, Password, PersonName),
    role: Role,
    tutor: Option<NewTutorProfile>,
    link_to: Option<LinkTo>,
) -> Result<Account, ApiError> {
    // Cheap refusals first, so a flood of doomed requests does not occupy the hashing threads.
    // The transaction below checks both again.
    if accounts::email_taken(db, &email).await? {
        return Err(ApiError::conflict(
            "email_taken",
            "an account with this e-mail already exists",
        ));
    }
    if let Some(LinkTo::Tag(tag)) = &link_to
        && links::active_tutor_by_tag(db, tag).await?.is_none()
    {
        return Err(ApiError::not_found(
            "tag_not_found",
            "no active teacher has this tag",
        ));
    }
    let password_hash = auth.hasher.hash(&password).await?;
    let new = NewAccount {
        email,
        password_hash,
        name,
        role,
    };
    Ok(accounts::create(db, &new, tutor.as_ref(), link_to).await?)
}

/// Deactivates the caller's account (`DELETE /teachers/me`, `DELETE /students/me`): its future
/// sessions are cancelled in the same transaction, their tutors' actors told, and, once that has
/// committed, paid ones refunded (a refund the provider fails now is made by the sweep).
pub async fn deactivate_account(
    db: &PgPool,
    auth: &Auth,
    scheduler: &Registry,
    payments: &Payments,
    (account, role): (Uuid, Role),
) -> Result<(), ApiError> {
    let cancelled = accounts::deactivate(db, account, role)
        .await?
        .ok_or_else(ApiError::account_not_found)?;
    // Its tokens still authenticate, but this node refuses at once to book as it (others learn
    // of it with revocations).
    auth.revoked.insert_deactivated(account, chrono::Utc::now());
    if role == Role::Tutor {
        scheduler
            .tell_if_running(account, Changed::Deactivated)
            .await;
    }
    // The cancelled sessions' time is free again.
    let mut by_tutor: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (session_id, tutor_id) in &cancelled {
        by_tutor.entry(*tutor_id).or_default().push(*session_id);
    }
    for (tutor_id, sessions) in by_tutor {
        scheduler
            .tell_if_running(tutor_id, Changed::Released(sessions))
            .await;
    }
    let sessions = cancelled
        .iter()
        .map(|(session_id, _)| *session_id)
        .collect();
    refunds::refund_soon(db, payments, sessions).await;
    tracing::info!(%account, ?role, cancelled = cancelled.len(), "account deactivated");
    Ok(())
}
