//! `/auth/*`: register, login, logout and the current token's session.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::accounts::{NewAccountBody, create_account, parse_new_account, parse_tutor_changes};
use super::json::ApiJson;
use super::views::UserView;
use crate::auth::{Auth, AuthUser};
use crate::domain::{Email, Password, Role};
use crate::error::{ApiError, FieldErrors};
use crate::store::login_failures::{self, Attempt};
use crate::store::{accounts, auth_sessions};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/register").route(web::post().to(register)))
        .service(web::resource("/auth/login").route(web::post().to(login)))
        .service(web::resource("/auth/logout").route(web::post().to(logout)))
        .service(web::resource("/auth/session").route(web::get().to(session)));
}

/// `POST /auth/register`: a new student or tutor (a tutor gets a tag).
async fn register(
    db: web::Data<PgPool>,
    auth: web::Data<Auth>,
    ApiJson(body): ApiJson<NewAccountBody>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let account = parse_new_account(&mut errors, &body.email, &body.password, &body.name);
    let role = match body.role.as_deref() {
        Some(raw) => errors.check("role", raw.parse::<Role>()),
        None => {
            errors.push("role", "is required: `student` or `tutor`");
            None
        }
    };
    let tutor = match role {
        Some(Role::Tutor) => Some(parse_tutor_changes(&mut errors, body.tutor_fields())),
        Some(Role::Student) => {
            body.tutor_fields().refuse_for_student(&mut errors);
            None
        }
        None => None,
    };
    let (account, role) = errors.finish(account.zip(role))?;
    let created = create_account(
        &db,
        &auth,
        account,
        role,
        tutor.map(|t| t.into_new_profile()),
        None,
    )
    .await?;
    Ok(HttpResponse::Created().json(UserView::of(&created, Some(created.id))))
}

#[derive(Debug, Deserialize)]
struct LoginBody {
    email: String,
    password: String,
    user_type: Option<String>,
}

#[derive(Debug, Serialize)]
struct LoginResponse {
    token: String,
    user_id: Uuid,
    user_type: Role,
    expires_at: DateTime<Utc>,
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "the e-mail or password is incorrect")
}

/// `POST /auth/login`. The answer never says whether the e-mail exists, nor whether only the
/// `user_type` was wrong: every refusal costs the same bcrypt check, counts towards throttling,
/// and reads the same.
async fn login(
    db: web::Data<PgPool>,
    auth: web::Data<Auth>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<web::Json<LoginResponse>, ApiError> {
    let Ok(email) = Email::parse(&body.email) else {
        auth.hasher.verify_decoy(&body.password).await?;
        return Err(invalid_credentials());
    };
    let attempt = login_failures::begin_attempt(&db, email.as_str()).await?;
    let checked = counted(attempt, check_login(&db, &auth, &email, &body)).await?;
    login_failures::forgive(&db, email.as_str()).await?;
    Ok(web::Json(checked))
}

/// Runs a password check counted by `attempt`: throttled, it does not run; failing for the
/// server's reasons (the database, a full hashing queue) or abandoned with its request, it is
/// withdrawn from the count, so only wrong passwords lock an e-mail out.
pub(super) async fn counted<T>(
    attempt: Attempt,
    check: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let unchecked = match attempt {
        Attempt::Throttled { retry_after_secs } => {
            return Err(ApiError::TooManyRequests { retry_after_secs });
        }
        Attempt::Allowed(unchecked) => unchecked,
    };
    let checked = check.await;
    match &checked {
        Err(err) if err.status().is_server_error() => unchecked.withdraw().await,
        _ => unchecked.checked(),
    }
    checked
}

/// Checks a login's password and issues its token.
async fn check_login(
    db: &PgPool,
    auth: &Auth,
    email: &Email,
    body: &LoginBody,
) -> Result<LoginResponse, ApiError> {
    // bcrypt reads at most 72 bytes: a longer password could only match by truncation.
    let password_fits = body.password.len() <= Password::MAX_BYTES;
    let credentials = accounts::find_credentials(db, email.as_str()).await?;
    let matches = match &credentials {
        Some(c) if password_fits => auth.hasher.verify(&body.password, &c.password_hash).await?,
        _ => auth.hasher.verify_decoy(&body.password).await?,
    };
    let wanted_role = body.user_type.as_deref().map(Role::parse_user_type);
    let Some(credentials) = credentials.filter(|c| {
        matches
            && c.deactivated_at.is_none()
            && wanted_role
                .as_ref()
                .is_none_or(|wanted| *wanted == Ok(c.role))
    }) else {
        return Err(invalid_credentials());
    };
    let issued = auth.keys.issue(credentials.id, credentials.role)?;
    auth_sessions::insert(db, &issued.claims).await?;
    Ok(LoginResponse {
        token: issued.token,
        user_id: credentials.id,
        user_type: credentials.role,
        expires_at: issued.claims.expires_at(),
    })
}

/// `POST /auth/logout`: revokes the presented token on every node.
async fn logout(
    db: web::Data<PgPool>,
    auth: web::Data<Auth>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    auth_sessions::revoke(db.get_ref(), user.claims.jti).await?;
    auth.revoked
        .insert(user.claims.jti, user.claims.expires_at());
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize)]
struct SessionResponse {
    token: String,
    user_id: Uuid,
    user_type: Role,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// `GET /auth/session`: what the presented token says.
async fn session(user: AuthUser) -> web::Json<SessionResponse> {
    web::Json(SessionResponse {
        user_id: user.id(),
        user_type: user.role(),
        issued_at: user.claims.issued_at(),
        expires_at: user.claims.expires_at(),
        token: user.token,
    })
}
