//! `/user/{id}`: read a profile, change one's own.

use actix_web::web;
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::accounts::{TutorFields, parse_tutor_changes};
use super::json::ApiJson;
use super::views::UserView;
use crate::auth::{Auth, AuthUser};
use crate::domain::{Email, MoneyDto, Password, PersonName, Role};
use crate::error::{ApiError, FieldError, FieldErrors};
use crate::scheduling::{Changed, Registry};
use crate::store::accounts::{self, Account, AccountChanges};
use crate::store::login_failures;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/user").service(
            web::resource("/{id}")
                .route(web::get().to(get_user))
                .route(web::put().to(update_user)),
        ),
    );
}

fn user_not_found() -> ApiError {
    ApiError::not_found("user_not_found", "no active user has this id")
}

/// `GET /user/{id}`: the public profile; `email` only for the user itself.
async fn get_user(
    db: web::Data<PgPool>,
    caller: AuthUser,
    id: web::Path<Uuid>,
) -> Result<web::Json<UserView>, ApiError> {
    let account = accounts::find(&db, *id)
        .await?
        .filter(|a| a.is_active())
        .ok_or_else(user_not_found)?;
    Ok(web::Json(UserView::of(&account, Some(caller.id()))))
}

#[derive(Debug, Deserialize)]
struct UpdateUserBody {
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
    current_password: Option<String>,
    institution: Option<String>,
    bio: Option<String>,
    specialization: Option<Vec<String>>,
    price_per_hour: Option<MoneyDto>,
    timezone: Option<String>,
}

impl UpdateUserBody {
    fn tutor_fields(&self) -> TutorFields<'_> {
        TutorFields {
            institution: self.institution.as_deref(),
            bio: self.bio.as_deref(),
            specialization: self.specialization.as_deref(),
            price_per_hour: self.price_per_hour.as_ref(),
            timezone: self.timezone.as_deref(),
        }
    }
}

/// `PUT /user/{id}`: changes one's own account. A new password needs the current one, and ends
/// every other session of the account.
async fn update_user(
    db: web::Data<PgPool>,
    auth: web::Data<Auth>,
    scheduler: web::Data<Registry>,
    caller: AuthUser,
    id: web::Path<Uuid>,
    ApiJson(body): ApiJson<UpdateUserBody>,
) -> Result<web::Json<UserView>, ApiError> {
    if caller.id() != *id {
        return Err(ApiError::forbidden("you may only change your own account"));
    }
    let mut errors = FieldErrors::default();
    let name = body
        .name
        .as_deref()
        .and_then(|v| errors.check("name", PersonName::parse(v)));
    let email = body
        .email
        .as_deref()
        .and_then(|v| errors.check("email", Email::parse(v)));
    let password = body
        .password
        .clone()
        .and_then(|v| errors.check("password", Password::parse(v)));
    if body.password.is_some() && body.current_password.is_none() {
        errors.push("current_password", "is required to change the password");
    }
    let tutor = match caller.role() {
        Role::Tutor => parse_tutor_changes(&mut errors, body.tutor_fields()),
        Role::Student => {
            body.tutor_fields().refuse_for_student(&mut errors);
            Default::default()
        }
    };
    errors.finish(Some(()))?;

    let password_hash = match (&password, &body.current_password) {
        (Some(new_password), Some(current)) => {
            Some(check_current_password(&db, &auth, caller.id(), current, new_password).await?)
        }
        _ => None,
    };
    let changes = AccountChanges {
        name,
        email,
        keep_only_session: password_hash.as_ref().map(|_| caller.claims.jti),
        password_hash,
        institution: tutor.institution,
        bio: tutor.bio,
        specialization: tutor.specialization,
        price: tutor.price,
        timezone: tutor.timezone,
    };
    let updated = accounts::update(&db, caller.id(), &changes)
        .await?
        .ok_or_else(ApiError::account_not_found)?;
    for (jti, expires_at) in updated.revoked {
        auth.revoked.insert(jti, expires_at);
    }
    if let (Some(zone), Some(seq)) = (changes.timezone, updated.timezone_seq) {
        // The availability rules share the profile's zone; a later change of the rules wins.
        scheduler
            .tell_if_running(caller.id(), Changed::Timezone { zone, seq })
            .await;
    }
    Ok(web::Json(UserView::of(&updated.account, Some(caller.id()))))
}

/// Checks the current password before a change, throttled like logins (a stolen token must not
/// become a way to guess the password), and hashes the new one.
async fn check_current_password(
    db: &PgPool,
    auth: &Auth,
    user_id: Uuid,
    current: &str,
    new_password: &Password,
) -> Result<String, ApiError> {
    let account = accounts::find(db, user_id)
        .await?
        .filter(Account::is_active)
        .ok_or_else(ApiError::account_not_found)?;
    let attempt = login_failures::begin_attempt(db, &account.email).await?;
    let check = async {
        let stored = accounts::password_hash(db, user_id)
            .await?
            .ok_or_else(ApiError::account_not_found)?;
        let fits = current.len() <= Password::MAX_BYTES;
        if fits && auth.hasher.verify(current, &stored).await? {
            Ok(())
        } else {
            Err(ApiError::Validation {
                code: "invalid_current_password",
                detail: "the current password is incorrect".to_owned(),
                errors: vec![FieldError::new("current_password", "is incorrect")],
            })
        }
    };
    super::auth::counted(attempt, check).await?;
    login_failures::forgive(db, &account.email).await?;
    Ok(auth.hasher.hash(new_password).await?)
}
