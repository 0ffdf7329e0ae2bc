//! `/students/*`: students who link to tutors through tags.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::accounts::{create_account, deactivate_account, parse_new_account};
use super::json::ApiJson;
use super::views::{LinkedTeacherView, MessageView, StudentView, UserView};
use crate::auth::{Auth, StudentUser, TutorUser};
use crate::domain::{Role, TutorTag};
use crate::error::{ApiError, FieldErrors};
use crate::payments::Payments;
use crate::scheduling::Registry;
use crate::store::accounts::{self, Account, LinkTo};
use crate::store::links;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/students").route(web::post().to(create_by_teacher)))
        .service(web::resource("/students/self-register").route(web::post().to(self_register)))
        .service(web::resource("/students/me/tags").route(web::post().to(add_tag)))
        .service(
            web::resource("/students/me")
                .route(web::get().to(get_me))
                .route(web::delete().to(deactivate_me)),
        );
}

/// A student with its linked teachers, as `viewer` may see it (`email` only for the student).
async fn student_view(
    db: &PgPool,
    account: &Account,
    viewer: Uuid,
) -> Result<StudentView, ApiError> {
    let teachers = links::linked_tutors(db, account.id).await?;
    Ok(StudentView {
        user: UserView::of(account, Some(viewer)),
        teachers: teachers.into_iter().map(LinkedTeacherView::from).collect(),
    })
}

#[derive(Debug, Deserialize)]
struct SelfRegisterBody {
    name: String,
    email: String,
    password: String,
    teacher_tag: String,
}

/// `POST /students/self-register`: a new student linked to the teacher with `teacher_tag`.
async fn self_register(
    db: web::Data<PgPool>,
    auth: web::Data<Auth>,
    ApiJson(body): ApiJson<SelfRegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let account = parse_new_account(&mut errors, &body.email, &body.password, &body.name);
    let tag = errors.check("teacher_tag", TutorTag::parse(&body.teacher_tag));
    let (account, tag) = errors.finish(account.zip(tag))?;
    let created = create_account(
        &db,
        &auth,
        account,
        Role::Student,
        None,
        Some(LinkTo::Tag(tag)),
    )
    .await?;
    Ok(HttpResponse::Created().json(student_view(&db, &created, created.id).await?))
}

#[derive(Debug, Deserialize)]
struct CreateStudentBody {
    name: String,
    email: String,
    password: String,
}

/// `POST /students`: a teacher creates a student already linked to them.
async fn create_by_teacher(
    db: web::Data<PgPool>,
    auth: web::Data<Auth>,
    caller: TutorUser,
    ApiJson(body): ApiJson<CreateStudentBody>,
) -> Result<HttpResponse, ApiError> {
    // Before the e-mail check and the hash: a deactivated teacher is told so, whatever it sent.
    super::acting_as(&db, caller.id()).await?;
    let mut errors = FieldErrors::default();
    let account = parse_new_account(&mut errors, &body.email, &body.password, &body.name);
    let account = errors.finish(account)?;
    let created = create_account(
        &db,
        &auth,
        account,
        Role::Student,
        None,
        Some(LinkTo::Tutor(caller.id())),
    )
    .await?;
    Ok(HttpResponse::Created().json(student_view(&db, &created, caller.id()).await?))
}

#[derive(Debug, Deserialize)]
struct AddTagBody {
    teacher_tag: String,
}

/// `POST /students/me/tags`: links the caller to another teacher.
async fn add_tag(
    db: web::Data<PgPool>,
    caller: StudentUser,
    ApiJson(body): ApiJson<AddTagBody>,
) -> Result<web::Json<MessageView>, ApiError> {
    let mut errors = FieldErrors::default();
    let tag = errors.check("teacher_tag", TutorTag::parse(&body.teacher_tag));
    let tag = errors.finish(tag)?;
    links::link_by_tag(&db, caller.id(), &tag).await?;
    Ok(web::Json(MessageView {
        message: "you are now linked to this teacher",
    }))
}

/// `GET /students/me`: the caller's profile with linked teachers.
async fn get_me(
    db: web::Data<PgPool>,
    caller: StudentUser,
) -> Result<web::Json<StudentView>, ApiError> {
    let account = accounts::find(&db, caller.id())
        .await?
        .filter(Account::is_active)
        .ok_or_else(ApiError::account_not_found)?;
    Ok(web::Json(student_view(&db, &account, account.id).await?))
}

/// `DELETE /students/me`: deactivates the account and cancels its future sessions.
async fn deactivate_me(
    db: web::Data<PgPool>,
    auth: web::Data<Auth>,
    scheduler: web::Data<Registry>,
    payments: web::Data<Payments>,
    caller: StudentUser,
) -> Result<web::Json<MessageView>, ApiError> {
    deactivate_account(
        &db,
        &auth,
        &scheduler,
        &payments,
        (caller.id(), Role::Student),
    )
    .await?;
    Ok(web::Json(MessageView {
        message: "the student account has been deactivated",
    }))
}
