//! The one error type of the HTTP edge. Every failure leaves the server as an RFC 9457 problem
//! document (`application/problem+json`) with a stable machine `code`. Client mistakes carry a
//! safe message; unexpected failures log their whole cause chain and answer an opaque `500`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::auth::HasherBusy;
use crate::domain::InvalidValue;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request, reported in a `422` body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request the client must change before retrying.
    #[error("{detail}")]
    Client {
        status: StatusCode,
        code: &'static str,
        detail: String,
    },
    /// One or more fields are invalid (`422`).
    #[error("{detail}")]
    Validation {
        code: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// Too many attempts; retry after the given number of seconds (`429`).
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// A dependency (the database) cannot be reached right now (`503`).
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything unexpected: logged in full, answered as an opaque `500`.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn client(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self::Client {
            status,
            code,
            detail: detail.into(),
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::client(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::client(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::client(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::client(StatusCode::CONFLICT, code, detail)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// A `422` for one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError::new(field, message)])
    }

    /// A `422` listing every invalid field.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        Self::Validation {
            code: "validation_failed",
            detail: "the request has invalid fields".to_owned(),
            errors,
        }
    }

    /// A `422` with a specific code (`bad_duration`, `outside_availability`, …) about `field`.
    pub fn unprocessable(code: &'static str, field: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self::Validation {
            code,
            errors: vec![FieldError::new(field, detail.clone())],
            detail,
        }
    }

    /// The account the token names is deactivated or gone.
    pub fn account_not_found() -> Self {
        Self::not_found(
            "account_not_found",
            "this account does not exist or is deactivated",
        )
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Client { status, .. } => *status,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Client { code, .. } | Self::Validation { code, .. } => code,
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Unavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Client { detail, .. } | Self::Validation { detail, .. } => detail.clone(),
            Self::TooManyRequests { retry_after_secs } => {
                format!("too many attempts; retry in {retry_after_secs} s")
            }
            Self::Unavailable(_) => {
                "a service this request needs is unavailable; retry shortly".to_owned()
            }
            Self::Internal(_) => "an unexpected error occurred".to_owned(),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        if err.is::<HasherBusy>() {
            return Self::client(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_busy",
                "the server is busy; retry shortly",
            );
        }
        // A database error that reached us wrapped (a store function returning `anyhow`) means
        // what it means bare: an unreachable database is `503`, not a fault of ours.
        if err
            .downcast_ref::<sqlx::Error>()
            .is_some_and(is_unavailable)
        {
            return Self::Unavailable(err);
        }
        Self::Internal(err)
    }
}

/// The one place where named database constraints become client errors. The schema holds the
/// invariants; this table says what breaking each one means to the client.
fn constraint_violation(constraint: &str) -> Option<ApiError> {
    let (code, detail) = match constraint {
        "users_email_key" => ("email_taken", "an account with this e-mail already exists"),
        "sessions_tutor_no_overlap" => ("slot_taken", "the tutor already has a session then"),
        "sessions_student_no_overlap" => ("student_busy", "you already have a session then"),
        "student_tutor_links_pkey" => {
            ("tag_already_linked", "you are already linked to this tutor")
        }
        "reviews_session_id_key" => ("already_reviewed", "this session has already been reviewed"),
        "payments_one_live_per_session" => ("already_paid", "this session is paid or being paid"),
        _ => return None,
    };
    Some(ApiError::conflict(code, detail))
}

/// Whether a database error means "the database cannot be reached right now" (`503`) rather
/// than a fault of ours.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        // Connection exceptions (08), insufficient resources (53), operator intervention (57),
        // transaction rollbacks that a retry may clear (40: deadlock, serialization failure),
        // a database not accepting connections (55000) or missing (3D000), refused
        // authorization (28), a read-only standby (25006).
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            ["08", "53", "57", "28", "40"]
                .iter()
                .any(|class| code.starts_with(class))
                || ["55000", "3D000", "25006"].contains(&code.as_ref())
        }),
        _ => false,
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err
            && let Some(client_error) = db.constraint().and_then(constraint_violation)
        {
            return client_error;
        }
        let unavailable = is_unavailable(&err);
        let err = anyhow::Error::new(err).context("database error");
        if unavailable {
            Self::Unavailable(err)
        } else {
            Self::Internal(err)
        }
    }
}

impl From<crate::scheduling::ScheduleError> for ApiError {
    fn from(err: crate::scheduling::ScheduleError) -> Self {
        use crate::domain::slots::Refusal;
        use crate::scheduling::ScheduleError as E;
        match err {
            E::Refused(Refusal::SlotTaken) => {
                Self::conflict("slot_taken", "the tutor already has a session at that time")
            }
            E::Refused(refusal @ Refusal::BadDuration) => {
                Self::unprocessable(refusal.code(), "duration_minutes", refusal.to_string())
            }
            E::Refused(refusal) => {
                Self::unprocessable(refusal.code(), "scheduled_at", refusal.to_string())
            }
            E::StudentBusy => {
                Self::conflict("student_busy", "you already have a session at that time")
            }
            E::TutorNotFound => Self::not_found("tutor_not_found", "no active tutor has this id"),
            E::StudentInactive => Self::account_not_found(),
            E::NotScheduled => Self::conflict(
                "session_not_scheduled",
                "the session is already completed or cancelled",
            ),
            E::Unavailable(message) => Self::Unavailable(anyhow::anyhow!(message)),
            E::Internal(message) => Self::Internal(anyhow::anyhow!(message)),
        }
    }
}

impl From<crate::store::accounts::CreateAccountError> for ApiError {
    fn from(err: crate::store::accounts::CreateAccountError) -> Self {
        use crate::store::accounts::CreateAccountError as E;
        match err {
            E::Database(err) => err.into(),
            E::TagsExhausted => Self::client(
                StatusCode::SERVICE_UNAVAILABLE,
                "tags_exhausted",
                "all 10,000 tutor tags are in use; no tutor can be created",
            ),
            E::TagNotFound => Self::not_found("tag_not_found", "no active teacher has this tag"),
            E::TutorInactive => Self::account_not_found(),
        }
    }
}

impl From<crate::store::links::LinkError> for ApiError {
    fn from(err: crate::store::links::LinkError) -> Self {
        use crate::store::links::LinkError as E;
        match err {
            E::Database(err) => err.into(),
            E::TagNotFound => Self::not_found("tag_not_found", "no active teacher has this tag"),
            E::AlreadyLinked => Self::conflict(
                "tag_already_linked",
                "you are already linked to this teacher",
            ),
            E::StudentInactive => Self::account_not_found(),
        }
    }
}

/// The RFC 9457 body.
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl ApiError {
    /// The problem document this error is answered with.
    fn problem(&self) -> Problem<'_> {
        let status = self.status();
        let code = self.code();
        Problem {
            kind: format!("/problems/{}", code.replace('_', "-")),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.detail(),
            code,
            errors: match self {
                Self::Validation { errors, .. } => Some(errors.as_slice()),
                _ => None,
            },
        }
    }

    /// The problem document as JSON, to keep and send again (an `Idempotency-Key` replay).
    pub fn problem_json(&self) -> serde_json::Value {
        serde_json::to_value(self.problem()).unwrap_or_default()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(err) => tracing::error!(error = format!("{err:#}"), "request failed"),
            Self::Unavailable(err) => {
                tracing::warn!(error = format!("{err:#}"), "dependency unavailable");
            }
            _ => {}
        }
        let status = self.status();
        let body = self.problem();
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            Self::TooManyRequests { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::Client { status, .. } if *status == StatusCode::UNAUTHORIZED => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        // Serializing this struct cannot fail; fall back to an empty object rather than panic.
        response.body(serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec()))
    }
}

/// Collects the invalid fields of one request body, so a client learns of all of them at once.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Records `field`'s error, if any, and passes its value on.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, InvalidValue>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(InvalidValue(message)) => {
                self.0.push(FieldError::new(field, message));
                None
            }
        }
    }

    /// Records an error that no parser produced.
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// `422` when any field was invalid, else the parsed values (gathered with `Option::zip`).
    pub fn finish<T>(self, parsed: Option<T>) -> Result<T, ApiError> {
        if !self.0.is_empty() {
            return Err(ApiError::invalid(self.0));
        }
        parsed.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a field parsed to nothing")))
    }
}
