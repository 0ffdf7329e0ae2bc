//! `/teachers/*`: the Mentoria API's view of tutor accounts.

use actix_web::{HttpResponse, web};
use serde_json::json;
use sqlx::PgPool;

use super::accounts::{
    NewAccountBody, create_account, deactivate_account, parse_new_account, parse_tutor_changes,
};
use super::json::ApiJson;
use super::pagination::{Page, PageParams, Paginated};
use super::views::{LinkedStudentView, MessageView, TeacherView};
use crate::auth::{Auth, TutorUser};
use crate::domain::Role;
use crate::error::{ApiError, FieldErrors};
use crate::payments::Payments;
use crate::scheduling::Registry;
use crate::store::accounts::{self, Account};
use crate::store::links;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/teachers").route(web::post().to(create_teacher)))
        .service(
            web::resource("/teachers/me")
                .route(web::get().to(get_me))
                .route(web::delete().to(deactivate_me)),
        )
        .service(web::resource("/teachers/me/tag").route(web::get().to(get_tag)))
        .service(web::resource("/teachers/me/students").route(web::get().to(list_students)));
}

fn view(account: &Account) -> Result<TeacherView, ApiError> {
    TeacherView::of(account, Some(account.id))
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("tutor {} has no profile", account.id)))
}

/// `POST /teachers`: a new tutor account with a fresh tag.
async fn create_teacher(
    db: web::Data<PgPool>,
    auth: web::Data<Auth>,
    ApiJson(body): ApiJson<NewAccountBody>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let account = parse_new_account(&mut errors, &body.email, &body.password, &body.name);
    let profile = parse_tutor_changes(&mut errors, body.tutor_fields());
    let account = errors.finish(account)?;
    let created = create_account(
        &db,
        &auth,
        account,
        Role::Tutor,
        Some(profile.into_new_profile()),
        None,
    )
    .await?;
    Ok(HttpResponse::Created().json(view(&created)?))
}

/// The caller's own tutor account, while it is active.
async fn active_self(db: &PgPool, caller: &TutorUser) -> Result<Account, ApiError> {
    accounts::find(db, caller.id())
        .await?
        .filter(|a| a.is_active() && a.tutor.is_some())
        .ok_or_else(ApiError::account_not_found)
}

/// `GET /teachers/me`.
async fn get_me(
    db: web::Data<PgPool>,
    caller: TutorUser,
) -> Result<web::Json<TeacherView>, ApiError> {
    let account = active_self(&db, &caller).await?;
    Ok(web::Json(view(&account)?))
}

/// `GET /teachers/me/tag`.
async fn get_tag(db: web::Data<PgPool>, caller: TutorUser) -> Result<HttpResponse, ApiError> {
    let account = active_self(&db, &caller).await?;
    let tag = account.tutor.map(|t| t.tag).unwrap_or_default();
    Ok(HttpResponse::Ok().json(json!({ "tag": tag })))
}

/// `DELETE /teachers/me`: deactivates the account and cancels its future sessions.
async fn deactivate_me(
    db: web::Data<PgPool>,
    auth: web::Data<Auth>,
    scheduler: web::Data<Registry>,
    payments: web::Data<Payments>,
    caller: TutorUser,
) -> Result<web::Json<MessageView>, ApiError> {
    deactivate_account(
        &db,
        &auth,
        &scheduler,
        &payments,
        (caller.id(), Role::Tutor),
    )
    .await?;
    Ok(web::Json(MessageView {
        message: "the teacher account has been deactivated",
    }))
}

/// `GET /teachers/me/students`: active students linked to the caller, oldest link first.
async fn list_students(
    db: web::Data<PgPool>,
    caller: TutorUser,
    params: web::Query<PageParams>,
) -> Result<web::Json<Paginated<LinkedStudentView>>, ApiError> {
    let page = Page::parse(&params)?;
    active_self(&db, &caller).await?;
    let rows = links::tutor_students(&db, caller.id(), page.after, page.fetch_limit()).await?;
    Ok(web::Json(Paginated::from_rows(
        rows,
        &page,
        |s| (s.linked_at, s.id),
        LinkedStudentView::from,
    )))
}
