//! `/tutors/*`: the public catalogue, availability rules and bookable slots.

use std::time::Instant;

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::{StreamExt as _, stream};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::json::ApiJson;
use super::pagination::{Page, PageParams, Paginated, encode_cursor};
use super::views::{SlotView, UserView};
use crate::auth::TutorUser;
use crate::domain::availability::{AvailabilityRules, AvailabilityRulesDto};
use crate::domain::parse_instant;
use crate::domain::slots::local_rfc3339_in;
use crate::error::{ApiError, FieldError, FieldErrors};
use crate::scheduling::{QuerySlots, Registry, ReplaceRules, ScheduleError, SlotList};
use crate::store::accounts::{self, CatalogueFilter};
use crate::store::availability;

/// The longest range a slot query (or an availability filter) may cover.
const MAX_RANGE: TimeDelta = TimeDelta::days(31);
/// How many tutors one catalogue request examines at most with an availability filter.
const MAX_SCANNED: usize = 500;
/// How many of those tutors' actors are asked at once (each may have to load its schedule).
const CONCURRENT_LOOKUPS: usize = 8;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // A scope, so other paths never reach these patterns; the busiest one is tried first.
    cfg.service(
        web::scope("/tutors")
            .service(web::resource("/{id}/slots").route(web::get().to(get_slots)))
            .service(web::resource("").route(web::get().to(list_tutors)))
            .service(web::resource("/me/availability").route(web::put().to(replace_availability)))
            .service(web::resource("/{id}").route(web::get().to(get_tutor)))
            .service(web::resource("/{id}/availability").route(web::get().to(get_availability))),
    );
}

fn tutor_not_found() -> ApiError {
    ApiError::not_found("tutor_not_found", "no active tutor has this id")
}

/// `[from, to)` from query parameters: both instants, `to` after `from`, at most 31 days.
fn parse_range(
    errors: &mut FieldErrors,
    (from_field, from): (&str, Option<&str>),
    (to_field, to): (&str, Option<&str>),
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let from = match from {
        Some(raw) => errors.check(from_field, parse_instant(raw)),
        None => {
            errors.push(from_field, "is required");
            None
        }
    };
    let to = match to {
        Some(raw) => errors.check(to_field, parse_instant(raw)),
        None => {
            errors.push(to_field, "is required");
            None
        }
    };
    let (from, to) = from.zip(to)?;
    if to <= from {
        errors.push(to_field, format!("must be after {from_field}"));
        return None;
    }
    if to - from > MAX_RANGE {
        errors.push(
            to_field,
            format!("must be at most 31 days after {from_field}"),
        );
        return None;
    }
    Some((from, to))
}

#[derive(Debug, Default, Deserialize)]
struct CatalogueParams {
    specialization: Option<String>,
    max_price_cents: Option<String>,
    available_from: Option<String>,
    available_to: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

/// `GET /tutors`: active tutors, oldest first, with filters.
async fn list_tutors(
    req: HttpRequest,
    db: web::Data<PgPool>,
    scheduler: web::Data<Registry>,
    params: web::Query<CatalogueParams>,
) -> Result<web::Json<Paginated<UserView>>, ApiError> {
    let mut errors = FieldErrors::default();
    let max_price =
        params
            .max_price_cents
            .as_deref()
            .and_then(|raw| match raw.trim().parse::<i64>() {
                Ok(cents) if cents >= 0 => Some(cents),
                _ => {
                    errors.push(
                        "max_price_cents",
                        "must be a whole number of cents, 0 or more",
                    );
                    None
                }
            });
    let range = match (&params.available_from, &params.available_to) {
        (None, None) => None,
        (from, to) => parse_range(
            &mut errors,
            ("available_from", from.as_deref()),
            ("available_to", to.as_deref()),
        ),
    };
    let specialization = params
        .specialization
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if specialization.is_some_and(|s| s.chars().any(char::is_control)) {
        errors.push("specialization", "must not contain control characters");
    }
    errors.finish(Some(()))?;
    let page = Page::parse(&params.page)?;
    let filter = CatalogueFilter {
        specialization,
        max_price_cents: max_price,
    };
    let Some((from, to)) = range else {
        let rows = accounts::catalogue(&db, &filter, page.after, page.fetch_limit()).await?;
        return Ok(web::Json(Paginated::from_rows(
            rows,
            &page,
            |a| (a.created_at, a.id),
            |a| UserView::of(&a, None),
        )));
    };

    let stop_at = super::Deadline::of(&req).map(|deadline| {
        let now = Instant::now();
        now + deadline.saturating_duration_since(now) / 2
    });
    let found = with_free_slot(&db, &scheduler, &filter, &page, (from, to), stop_at).await?;
    Ok(web::Json(found))
}

/// A page of the catalogue filtered by availability: the candidates' actors are asked (from
/// memory, a few at a time) until the page is full, enough tutors were examined, or `stop_at`
/// has come (half the time left to the request): a short page with a cursor beats a `503`.
async fn with_free_slot(
    db: &PgPool,
    scheduler: &Registry,
    filter: &CatalogueFilter<'_>,
    page: &Page,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    stop_at: Option<Instant>,
) -> Result<Paginated<UserView>, ApiError> {
    const BATCH: usize = 100;
    let limit = page.limit as usize;
    let mut items = Vec::new();
    let mut after = page.after;
    let mut scanned = 0;
    // Whether tutors beyond `after` may remain; one extra row per batch tells.
    let mut more = true;
    'scan: while more && scanned < MAX_SCANNED {
        let mut batch = accounts::catalogue(db, filter, after, BATCH as i64 + 1).await?;
        more = batch.len() > BATCH;
        batch.truncate(BATCH);
        let last = batch.len();
        let mut answers = stream::iter(batch)
            .map(|account| async move {
                let free = has_free_slot(scheduler, account.id, from, to).await;
                (account, free)
            })
            .buffered(CONCURRENT_LOOKUPS);
        let mut examined = 0;
        loop {
            let next = match stop_at {
                Some(at) => match tokio::time::timeout_at(at.into(), answers.next()).await {
                    Ok(next) => next,
                    // Out of time while a tutor is still being read: resume from it.
                    Err(_) => {
                        more = true;
                        break 'scan;
                    }
                },
                None => answers.next().await,
            };
            let Some((account, free)) = next else { break };
            let free = match free {
                Ok(free) => free,
                // Schedules became unreadable (the database went away) after some were read:
                // the page found so far, resuming from this tutor.
                Err(_) if !items.is_empty() => {
                    more = true;
                    break 'scan;
                }
                Err(err) => return Err(err),
            };
            examined += 1;
            scanned += 1;
            after = Some((account.created_at, account.id));
            if free {
                items.push(UserView::of(&account, None));
            }
            let out_of_time = stop_at.is_some_and(|at| Instant::now() >= at);
            if items.len() == limit || out_of_time {
                more = more || examined < last;
                break 'scan;
            }
        }
    }
    let next_cursor = if more {
        after.map(super::pagination::encode_cursor)
    } else {
        None
    };
    Ok(Paginated { items, next_cursor })
}

/// Whether a tutor has a bookable start in `[from, to)`; a tutor that is gone, or whose
/// schedule cannot be read, has none.
async fn has_free_slot(
    scheduler: &Registry,
    tutor_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let query = QuerySlots {
        from,
        to,
        duration_minutes: None,
    };
    match scheduler.slots(tutor_id, query).await {
        Ok(answer) => Ok(!answer.bookable().is_empty()),
        Err(ScheduleError::TutorNotFound) => Ok(false),
        Err(ScheduleError::Unavailable(message)) => {
            Err(ApiError::Unavailable(anyhow::anyhow!(message)))
        }
        // One tutor's broken schedule must not hide the whole catalogue.
        Err(err) => {
            tracing::error!(tutor = %tutor_id, error = %err, "skipping a tutor in the catalogue");
            Ok(false)
        }
    }
}

/// `GET /tutors/{id}`: one active tutor.
async fn get_tutor(
    db: web::Data<PgPool>,
    id: web::Path<Uuid>,
) -> Result<web::Json<UserView>, ApiError> {
    let account = accounts::find_active_tutor(&db, *id)
        .await?
        .ok_or_else(tutor_not_found)?;
    Ok(web::Json(UserView::of(&account, None)))
}

/// `GET /tutors/{id}/availability`: the tutor's rules, in their canonical form.
async fn get_availability(
    db: web::Data<PgPool>,
    id: web::Path<Uuid>,
) -> Result<web::Json<AvailabilityRulesDto>, ApiError> {
    match availability::load_rules(db.get_ref(), *id).await? {
        Some((true, rules)) => Ok(web::Json(rules.to_dto())),
        _ => Err(tutor_not_found()),
    }
}

/// `PUT /tutors/me/availability`: replaces the caller's rules (and so its time zone).
async fn replace_availability(
    db: web::Data<PgPool>,
    scheduler: web::Data<Registry>,
    caller: TutorUser,
    ApiJson(body): ApiJson<AvailabilityRulesDto>,
) -> Result<web::Json<AvailabilityRulesDto>, ApiError> {
    let current = match availability::load_rules(db.get_ref(), caller.id()).await? {
        Some((true, rules)) => rules.timezone(),
        _ => return Err(ApiError::account_not_found()),
    };
    let rules = AvailabilityRules::parse(&body, current).map_err(|errors| {
        ApiError::invalid(
            errors
                .into_iter()
                .map(|(field, message)| FieldError::new(field, message))
                .collect(),
        )
    })?;
    match scheduler.ask(caller.id(), ReplaceRules { rules }).await {
        Ok(Ok(rules)) => Ok(web::Json(rules.to_dto())),
        Ok(Err(ScheduleError::TutorNotFound)) | Err(ScheduleError::TutorNotFound) => {
            Err(ApiError::account_not_found())
        }
        Ok(Err(err)) | Err(err) => Err(err.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
struct SlotParams {
    from: Option<String>,
    to: Option<String>,
    duration_minutes: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

/// `GET /tutors/{id}/slots`: bookable starts in `[from, to)`, answered from the tutor's actor
/// without a database query (once the actor is active). The actor keeps the list of a range
/// asked often and publishes it in its view, where later requests read it without a message to
/// the actor; each slot's JSON is rendered once per list, so a popular week costs a copy.
async fn get_slots(
    scheduler: web::Data<Registry>,
    id: web::Path<Uuid>,
    params: web::Query<SlotParams>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let range = parse_range(
        &mut errors,
        ("from", params.from.as_deref()),
        ("to", params.to.as_deref()),
    );
    let minutes = match params.duration_minutes.as_deref() {
        None => Some(None),
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(minutes) => Some(Some(minutes)),
            Err(_) => {
                errors.push("duration_minutes", "must be a whole number of minutes");
                None
            }
        },
    };
    let ((from, to), minutes) = errors.finish(range.zip(minutes))?;
    let minutes = minutes.map(super::duration_within_a_day).transpose()?;
    let page = Page::parse(&params.page)?;
    let answer = scheduler
        .slots(
            *id,
            QuerySlots {
                from,
                to,
                duration_minutes: minutes,
            },
        )
        .await?;

    let bookable = answer.bookable_range();
    let slots = answer.list.slots.get(bookable.clone()).unwrap_or_default();
    let skipped = page.after.map_or(0, |(after, _)| {
        slots.partition_point(|slot| slot.start <= after)
    });
    let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
    let remaining = slots.len() - skipped;
    let shown = remaining.min(limit);
    let next_cursor = (remaining > limit)
        .then(|| slots.get(skipped + shown - 1))
        .flatten()
        .map(|last| encode_cursor((last.start, Uuid::nil())));

    let rendered = match answer.list.rendered.get() {
        Some(rendered) => rendered,
        None => {
            let rendered = render_slots(&answer.list)?;
            answer.list.rendered.get_or_init(|| rendered)
        }
    };
    let first = bookable.start + skipped;
    let items = rendered.get(first..first + shown).unwrap_or_default();
    // The `Paginated` shape, written from the rendered items.
    let mut body =
        String::with_capacity(items.iter().map(|item| item.len() + 1).sum::<usize>() + 96);
    body.push_str("{\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(item);
    }
    body.push_str("],\"next_cursor\":");
    body.push_str(&serde_json::to_string(&next_cursor).map_err(anyhow::Error::from)?);
    body.push('}');
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body))
}

/// Each slot of a list as JSON: `{start, end, local_start}`.
fn render_slots(list: &SlotList) -> Result<Vec<Box<str>>, ApiError> {
    list.slots
        .iter()
        .map(|slot| {
            let view = SlotView {
                start: slot.start,
                end: slot.end,
                local_start: local_rfc3339_in(list.timezone, slot.start),
            };
            serde_json::to_string(&view)
                .map(String::into_boxed_str)
                .map_err(|err| ApiError::from(anyhow::Error::from(err)))
        })
        .collect()
}
