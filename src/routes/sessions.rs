//! `/sessions/*`: booking, reading, cancelling, completing and moving sessions. Every change to a
//! tutor's time goes through that tutor's actor.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::json::{ApiJson, OptionalJson};
use super::pagination::{Page, PageParams, Paginated};
use super::views::SessionView;
use crate::auth::{Auth, AuthUser, StudentUser};
use crate::domain::{Note, PaymentStatus, SessionStatus, parse_instant};
use crate::error::{ApiError, FieldErrors, PROBLEM_JSON};
use crate::payments::{Payments, refunds};
use crate::scheduling::{Book, Cancel, Registry, Reschedule, ScheduleError};
use crate::store::accounts;
use crate::store::idempotency::{self, Claim};
use crate::store::sessions::{self, SessionFilter, SessionRecord};

/// Used when a booking names no duration.
const DEFAULT_DURATION_MINUTES: u32 = 60;
const IDEMPOTENCY_SCOPE: &str = "POST /sessions";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/sessions")
            .service(web::resource("").route(web::post().to(book)))
            .service(web::resource("/user/{id}").route(web::get().to(list_for_user)))
            .service(web::resource("/{id}").route(web::get().to(get_session)))
            .service(web::resource("/{id}/cancel").route(web::post().to(cancel)))
            .service(web::resource("/{id}/complete").route(web::post().to(complete)))
            .service(web::resource("/{id}/reschedule").route(web::post().to(reschedule))),
    );
}

#[derive(Debug, Deserialize)]
struct BookBody {
    tutor_id: Uuid,
    scheduled_at: String,
    duration_minutes: Option<i64>,
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str().map(str::trim) {
        Ok(key) if (1..=255).contains(&key.len()) => Ok(Some(key.to_owned())),
        _ => Err(ApiError::invalid_field(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        )),
    }
}

fn created(record: &SessionRecord) -> HttpResponse {
    HttpResponse::Created().json(SessionView::from(record))
}

/// `POST /sessions`: books a session for the calling student. With an `Idempotency-Key`, the
/// same key and body within 24 h get the first answer and never a second booking.
async fn book(
    req: HttpRequest,
    db: web::Data<PgPool>,
    auth: web::Data<Auth>,
    scheduler: web::Data<Registry>,
    student: StudentUser,
    ApiJson(body): ApiJson<BookBody>,
) -> Result<HttpResponse, ApiError> {
    // Known from memory, so a refusal from memory (a taken slot) is no answer for such an
    // account; the database refuses it as well when the write is tried.
    if auth.revoked.is_deactivated(student.id()) {
        return Err(ApiError::account_not_found());
    }
    let key = idempotency_key(&req)?;
    let mut errors = FieldErrors::default();
    let start = errors.check("scheduled_at", parse_instant(&body.scheduled_at));
    let start = errors.finish(start)?;
    let minutes = super::duration_within_a_day(
        body.duration_minutes
            .unwrap_or(i64::from(DEFAULT_DURATION_MINUTES)),
    )?;
    let deadline = super::Deadline::of(&req);
    let book = |session_id| Book {
        session_id,
        student_id: student.id(),
        start,
        duration_minutes: minutes,
        deadline,
    };

    let Some(key) = key else {
        let record = scheduler.book(body.tutor_id, book(Uuid::now_v7())).await?;
        return Ok(created(&record));
    };
    let fingerprint = format!("{}|{}|{minutes}", body.tutor_id, start.to_rfc3339());
    let session_id =
        match idempotency::claim(&db, student.id(), IDEMPOTENCY_SCOPE, &key, &fingerprint).await? {
            Claim::Replay { status, body } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED);
                let content_type = if status.is_success() {
                    "application/json"
                } else {
                    PROBLEM_JSON
                };
                return Ok(HttpResponse::build(status)
                    .content_type(content_type)
                    .body(body.to_string()));
            }
            Claim::InFlight => {
                return Err(ApiError::conflict(
                    "request_in_progress",
                    "a request with this Idempotency-Key is still being processed",
                ));
            }
            Claim::Mismatch => {
                return Err(ApiError::unprocessable(
                    "idempotency_key_reused",
                    "Idempotency-Key",
                    "this Idempotency-Key was used for a different request",
                ));
            }
            Claim::Resume { resource_id } => {
                // The first attempt may have committed before it could record its answer.
                if let Some(existing) = sessions::find(db.get_ref(), resource_id).await? {
                    return remember(&db, student.id(), &key, &existing).await;
                }
                resource_id
            }
            Claim::Run { resource_id } => resource_id,
        };
    match scheduler.book(body.tutor_id, book(session_id)).await {
        Ok(record) => remember(&db, student.id(), &key, &record).await,
        Err(err) => {
            // A definite refusal is the key's answer for good: a retry gets it again, even
            // once the slot is free (a new key books it). Anything else (a timeout, the
            // database away) may still commit: the key stays held until its lease ends, and a
            // retry then finds the booking if it was made.
            let definite = matches!(
                err,
                ScheduleError::Refused(_)
                    | ScheduleError::StudentBusy
                    | ScheduleError::TutorNotFound
                    | ScheduleError::StudentInactive
            );
            if !definite {
                return Err(err.into());
            }
            // Kept for 24 h, so it must be right: a node that has not heard of a deactivation
            // yet may have refused from memory what is the deactivated account's 404.
            let refused = if accounts::is_active(&db, student.id()).await? {
                ApiError::from(err)
            } else {
                ApiError::account_not_found()
            };
            let (status, body) = (refused.status().as_u16(), refused.problem_json());
            idempotency::complete(&db, student.id(), IDEMPOTENCY_SCOPE, &key, status, &body)
                .await?;
            Err(refused)
        }
    }
}

async fn remember(
    db: &PgPool,
    student_id: Uuid,
    key: &str,
    record: &SessionRecord,
) -> Result<HttpResponse, ApiError> {
    let body = serde_json::to_value(SessionView::from(record)).map_err(anyhow::Error::from)?;
    idempotency::complete(db, student_id, IDEMPOTENCY_SCOPE, key, 201, &body).await?;
    Ok(HttpResponse::Created().json(body))
}

fn session_not_found() -> ApiError {
    ApiError::not_found("session_not_found", "no session of yours has this id")
}

/// The session, when the caller takes part in it; `404` for anyone else.
async fn participant_session(
    db: &PgPool,
    caller: &AuthUser,
    id: Uuid,
) -> Result<SessionRecord, ApiError> {
    sessions::find(db, id)
        .await?
        .filter(|s| s.is_participant(caller.id()))
        .ok_or_else(session_not_found)
}

/// `GET /sessions/{id}`.
async fn get_session(
    db: web::Data<PgPool>,
    caller: AuthUser,
    id: web::Path<Uuid>,
) -> Result<web::Json<SessionView>, ApiError> {
    super::acting_as(&db, caller.id()).await?;
    let session = participant_session(&db, &caller, *id).await?;
    Ok(web::Json(SessionView::from(&session)))
}

#[derive(Debug, Default, Deserialize)]
struct ListParams {
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

/// `GET /sessions/user/{id}`: the caller's own sessions, as student or tutor, latest first.
async fn list_for_user(
    db: web::Data<PgPool>,
    caller: AuthUser,
    id: web::Path<Uuid>,
    params: web::Query<ListParams>,
) -> Result<web::Json<Paginated<SessionView>>, ApiError> {
    if caller.id() != *id {
        return Err(ApiError::forbidden("you may only list your own sessions"));
    }
    let mut errors = FieldErrors::default();
    let status = params
        .status
        .as_deref()
        .and_then(|raw| errors.check("status", raw.parse::<SessionStatus>()));
    let from = params
        .from
        .as_deref()
        .and_then(|raw| errors.check("from", parse_instant(raw)));
    let to = params
        .to
        .as_deref()
        .and_then(|raw| errors.check("to", parse_instant(raw)));
    if let (Some(from), Some(to)) = (from, to)
        && to <= from
    {
        errors.push("to", "must be after from");
    }
    errors.finish(Some(()))?;
    let page = Page::parse(&params.page)?;
    super::acting_as(&db, caller.id()).await?;
    let filter = SessionFilter { status, from, to };
    let rows =
        sessions::list_for_user(&db, caller.id(), &filter, page.after, page.fetch_limit()).await?;
    Ok(web::Json(Paginated::from_rows(
        rows,
        &page,
        |s| (s.scheduled_at, s.id),
        |s| SessionView::from(&s),
    )))
}

fn not_scheduled(session: &SessionRecord) -> ApiError {
    match session.status {
        SessionStatus::Cancelled => {
            ApiError::conflict("already_cancelled", "the session is already cancelled")
        }
        _ => ApiError::conflict("already_completed", "the session is already completed"),
    }
}

#[derive(Debug, Default, Deserialize)]
struct CancelBody {
    reason: Option<String>,
}

/// `POST /sessions/{id}/cancel`: either participant cancels; the time is free again at once.
async fn cancel(
    db: web::Data<PgPool>,
    scheduler: web::Data<Registry>,
    payments: web::Data<Payments>,
    caller: AuthUser,
    id: web::Path<Uuid>,
    OptionalJson(body): OptionalJson<CancelBody>,
) -> Result<web::Json<SessionView>, ApiError> {
    let reason = match body.reason.as_deref().map(Note::parse).transpose() {
        Ok(reason) => reason.flatten(),
        Err(err) => return Err(ApiError::invalid_field("reason", err.to_string())),
    };
    super::acting_as(&db, caller.id()).await?;
    let session = participant_session(&db, &caller, *id).await?;
    if session.status != SessionStatus::Scheduled {
        return Err(not_scheduled(&session));
    }
    let cancelled = scheduler
        .ask(
            session.tutor_id,
            Cancel {
                session_id: session.id,
                reason,
            },
        )
        .await?;
    match cancelled {
        Ok(record) if record.payment_status == PaymentStatus::Paid => {
            // The cancellation has committed: a refund the provider fails now is made by the
            // sweep, and the session says `paid` until then.
            refunds::refund_soon(&db, &payments, vec![record.id]).await;
            let now = participant_session(&db, &caller, record.id)
                .await
                .unwrap_or(record);
            Ok(web::Json(SessionView::from(&now)))
        }
        Ok(record) => Ok(web::Json(SessionView::from(&record))),
        Err(crate::scheduling::ScheduleError::NotScheduled) => {
            // Completed or cancelled meanwhile: say which.
            let now = participant_session(&db, &caller, *id).await?;
            Err(not_scheduled(&now))
        }
        Err(err) => Err(err.into()),
    }
}

/// `POST /sessions/{id}/complete`: the session's tutor marks it done, once paid and started.
async fn complete(
    db: web::Data<PgPool>,
    caller: AuthUser,
    id: web::Path<Uuid>,
) -> Result<web::Json<SessionView>, ApiError> {
    super::acting_as(&db, caller.id()).await?;
    let session = participant_session(&db, &caller, *id).await?;
    if session.tutor_id != caller.id() {
        return Err(ApiError::forbidden(
            "only the session's tutor may complete it",
        ));
    }
    if session.status != SessionStatus::Scheduled {
        return Err(not_scheduled(&session));
    }
    if session.payment_status != PaymentStatus::Paid {
        return Err(ApiError::conflict(
            "payment_required",
            "the session must be paid before it is completed",
        ));
    }
    if session.scheduled_at > chrono::Utc::now() {
        return Err(ApiError::conflict(
            "not_started",
            "the session has not started yet",
        ));
    }
    match sessions::complete(db.get_ref(), session.id).await? {
        Some(record) => Ok(web::Json(SessionView::from(&record))),
        // Changed meanwhile (cancelled, say): report what it is now.
        None => {
            let now = participant_session(&db, &caller, *id).await?;
            Err(not_scheduled(&now))
        }
    }
}

#[derive(Debug, Deserialize)]
struct RescheduleBody {
    scheduled_at: String,
    duration_minutes: Option<i64>,
}

/// `POST /sessions/{id}/reschedule`: either participant moves the session; atomic, so the old
/// time is kept when the new one is refused.
async fn reschedule(
    db: web::Data<PgPool>,
    scheduler: web::Data<Registry>,
    caller: AuthUser,
    id: web::Path<Uuid>,
    ApiJson(body): ApiJson<RescheduleBody>,
) -> Result<web::Json<SessionView>, ApiError> {
    super::acting_as(&db, caller.id()).await?;
    let session = participant_session(&db, &caller, *id).await?;
    let current = u32::try_from(session.duration_minutes).unwrap_or(DEFAULT_DURATION_MINUTES);
    let mut errors = FieldErrors::default();
    let start = errors.check("scheduled_at", parse_instant(&body.scheduled_at));
    let start = errors.finish(start)?;
    let minutes =
        super::duration_within_a_day(body.duration_minutes.unwrap_or(i64::from(current)))?;
    if session.status != SessionStatus::Scheduled {
        return Err(not_scheduled(&session));
    }
    if minutes != current && session.payment_status == PaymentStatus::Paid {
        return Err(ApiError::conflict(
            "already_paid",
            "a paid session keeps its duration; cancel and book again to change it",
        ));
    }
    let moved = scheduler
        .ask(
            session.tutor_id,
            Reschedule {
                session_id: session.id,
                start,
                duration_minutes: minutes,
            },
        )
        .await?;
    match moved {
        Ok(record) => Ok(web::Json(SessionView::from(&record))),
        Err(crate::scheduling::ScheduleError::NotScheduled) => {
            let now = participant_session(&db, &caller, *id).await?;
            Err(not_scheduled(&now))
        }
        Err(crate::scheduling::ScheduleError::StudentInactive)
            if caller.id() != session.student_id =>
        {
            Err(ApiError::conflict(
                "student_inactive",
                "the session's student has deactivated their account",
            ))
        }
        Err(err) => Err(err.into()),
    }
}
