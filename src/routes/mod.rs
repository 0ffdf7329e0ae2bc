//! HTTP in and out: one module per resource. Handlers parse requests into domain types, call the
//! store, and answer with views; every failure is an [`ApiError`](crate::error::ApiError).

mod accounts;
mod auth;
mod health;
pub mod json;
pub mod pagination;
mod payments;
mod reviews;
mod sessions;
mod students;
mod teachers;
mod tutors;
mod users;
pub mod views;

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError, web};

use crate::error::{ApiError, PROBLEM_JSON};

/// Registers every route. Paths with `{id}` segments live in scopes: the router matches such a
/// pattern with a regular expression, and a scope's static prefix keeps every other request from
/// paying for it.
pub fn configure(cfg: &mut web::ServiceConfig) {
    health::configure(cfg);
    auth::configure(cfg);
    users::configure(cfg);
    teachers::configure(cfg);
    students::configure(cfg);
    tutors::configure(cfg);
    sessions::configure(cfg);
    reviews::configure(cfg);
    payments::configure(cfg);
}

/// When the request is abandoned and answered `503` (`REQUEST_TIMEOUT_MS` after it arrived).
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub std::time::Instant);

impl Deadline {
    /// The deadline of `req`, when it has one.
    pub fn of(req: &actix_web::HttpRequest) -> Option<std::time::Instant> {
        actix_web::HttpMessage::extensions(req)
            .get::<Self>()
            .map(|deadline| deadline.0)
    }
}

/// A duration as sent, checked against what no tutor allows: none, or more than a day. What a
/// tutor's rules allow is checked by its actor, with the same code.
fn duration_within_a_day(minutes: i64) -> Result<u32, ApiError> {
    u32::try_from(minutes)
        .ok()
        .filter(|minutes| (1..=1440).contains(minutes))
        .ok_or_else(|| {
            crate::scheduling::ScheduleError::Refused(crate::domain::slots::Refusal::BadDuration)
                .into()
        })
}

/// Refuses a caller whose account is deactivated. Its tokens still authenticate until they
/// expire or are revoked, but every route acting as the account answers `404`.
async fn acting_as(db: &sqlx::PgPool, account: uuid::Uuid) -> Result<(), ApiError> {
    if crate::store::accounts::is_active(db, account).await? {
        Ok(())
    } else {
        Err(ApiError::account_not_found())
    }
}

/// The answer for a path no route serves.
pub async fn unknown_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(
        "not_found",
        "no resource exists at this path",
    ))
}

/// Rewrites error responses that did not come from [`ApiError`] (a `405` from the router, say)
/// into problem documents, keeping their headers (`Allow`).
pub fn problem_for_bare_error<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (code, detail) = match status.as_u16() {
        404 => ("not_found", "no resource exists at this path"),
        405 => (
            "method_not_allowed",
            "this path does not support this method",
        ),
        413 => ("payload_too_large", "the request is too large"),
        400..=499 => ("bad_request", "the request could not be understood"),
        _ => ("internal_error", "an unexpected error occurred"),
    };
    let (req, bare) = res.into_parts();
    let mut problem: HttpResponse<BoxBody> =
        ApiError::client(status, code, detail).error_response();
    for (name, value) in bare.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let res: ServiceResponse<EitherBody<B, BoxBody>> =
        ServiceResponse::new(req, problem).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}
