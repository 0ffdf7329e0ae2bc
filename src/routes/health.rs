use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;
use sqlx::PgPool;

use crate::error::ApiError;

/// `/ready` answers `503` when the database does not answer within this time.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health").route(web::get().to(health)))
        .service(web::resource("/ready").route(web::get().to(ready)));
}

/// The process is up.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The process can serve: the database answers.
async fn ready(db: web::Data<PgPool>) -> Result<HttpResponse, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, sqlx::query("SELECT 1").execute(db.get_ref())).await {
        Ok(Ok(_)) => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        Ok(Err(err)) => Err(ApiError::Unavailable(err.into())),
        Err(_) => Err(ApiError::Unavailable(anyhow::anyhow!(
            "the database did not answer within {READY_TIMEOUT:?}"
        ))),
    }
}
