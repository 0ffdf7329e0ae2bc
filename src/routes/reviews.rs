//! `/reviews/*`: a session's student reviews it once it is completed; anyone reads reviews.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::json::ApiJson;
use super::pagination::{Page, PageParams, Paginated};
use super::views::RatingView;
use crate::auth::StudentUser;
use crate::domain::Note;
use crate::error::{ApiError, FieldErrors};
use crate::store::accounts;
use crate::store::reviews::{self, ReviewError, ReviewRecord, ReviewsOf};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/reviews")
            .service(web::resource("").route(web::post().to(create_review)))
            .service(web::resource("/session/{id}").route(web::get().to(session_reviews)))
            .service(web::resource("/tutor/{id}").route(web::get().to(tutor_reviews))),
    );
}

/// A review: `{id, session_id, student_id, tutor_id, rating, comment, created_at}`.
#[derive(Debug, Serialize)]
pub struct ReviewView {
    pub id: Uuid,
    pub session_id: Uuid,
    pub student_id: Uuid,
    pub tutor_id: Uuid,
    pub rating: i16,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<ReviewRecord> for ReviewView {
    fn from(r: ReviewRecord) -> Self {
        Self {
            id: r.id,
            session_id: r.session_id,
            student_id: r.student_id,
            tutor_id: r.tutor_id,
            rating: r.rating,
            comment: r.comment,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Deserialize)]
struct CreateReviewBody {
    session_id: Uuid,
    rating: i64,
    comment: Option<String>,
}

impl From<ReviewError> for ApiError {
    fn from(err: ReviewError) -> Self {
        match err {
            ReviewError::Database(err) => err.into(),
            ReviewError::SessionNotFound => {
                ApiError::not_found("session_not_found", "no session has this id")
            }
            ReviewError::NotTheStudent => {
                ApiError::forbidden("only the session's student may review it")
            }
            ReviewError::NotCompleted => {
                ApiError::conflict("not_completed", "only a completed session can be reviewed")
            }
        }
    }
}

/// `POST /reviews`.
async fn create_review(
    db: web::Data<PgPool>,
    student: StudentUser,
    ApiJson(body): ApiJson<CreateReviewBody>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let rating = match i16::try_from(body.rating) {
        Ok(rating) if (1..=5).contains(&rating) => Some(rating),
        _ => {
            errors.push("rating", "must be a whole number from 1 to 5");
            None
        }
    };
    let comment = match body.comment.as_deref().map(Note::parse).transpose() {
        Ok(comment) => comment.flatten(),
        Err(err) => {
            errors.push("comment", err.to_string());
            None
        }
    };
    let rating = errors.finish(rating)?;
    super::acting_as(&db, student.id()).await?;
    let review = reviews::create(
        &db,
        student.id(),
        body.session_id,
        rating,
        comment.as_ref().map(Note::as_str),
    )
    .await?;
    Ok(HttpResponse::Created().json(ReviewView::from(review)))
}

/// `GET /reviews/session/{id}`: a list like every other, though a session has one review at
/// most.
async fn session_reviews(
    db: web::Data<PgPool>,
    id: web::Path<Uuid>,
    params: web::Query<PageParams>,
) -> Result<web::Json<Paginated<ReviewView>>, ApiError> {
    let page = Page::parse(&params)?;
    let rows = reviews::page(&db, ReviewsOf::Session(*id), page.after, page.fetch_limit()).await?;
    Ok(web::Json(Paginated::from_rows(
        rows,
        &page,
        |r| (r.created_at, r.id),
        ReviewView::from,
    )))
}

/// A page of a tutor's reviews with the tutor's rating.
#[derive(Debug, Serialize)]
struct TutorReviews {
    #[serde(flatten)]
    page: Paginated<ReviewView>,
    average: Option<f64>,
    count: i32,
}

/// `GET /reviews/tutor/{id}`: newest first, with `{average, count}`.
async fn tutor_reviews(
    db: web::Data<PgPool>,
    id: web::Path<Uuid>,
    params: web::Query<PageParams>,
) -> Result<web::Json<TutorReviews>, ApiError> {
    let page = Page::parse(&params)?;
    let tutor = accounts::find_active_tutor(&db, *id)
        .await?
        .and_then(|a| a.tutor)
        .ok_or_else(|| ApiError::not_found("tutor_not_found", "no active tutor has this id"))?;
    let RatingView { average, count } = RatingView {
        average: tutor.rating_average(),
        count: tutor.rating_count,
    };
    let rows = reviews::page(&db, ReviewsOf::Tutor(*id), page.after, page.fetch_limit()).await?;
    Ok(web::Json(TutorReviews {
        page: Paginated::from_rows(rows, &page, |r| (r.created_at, r.id), ReviewView::from),
        average,
        count,
    }))
}
