//! Request parsing at the edge: JSON bodies, path and query parameters, each failure turned into
//! the right problem document (`400` malformed, `413` too large, `415`, `422` invalid field).

use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Request bodies larger than this are refused with `413`.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON request body of at most [`BODY_LIMIT`] bytes, deserialized into `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move { parse_json(&body.await?).map(ApiJson) })
    }
}

/// Like [`ApiJson`], for bodies that may be left out entirely (`{reason?}`): no body at all
/// reads as `T::default()`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move {
            let body = body.await?;
            if body.is_empty() {
                Ok(OptionalJson(T::default()))
            } else {
                parse_json(&body).map(OptionalJson)
            }
        })
    }
}

/// Reads the whole body, refusing it past [`BODY_LIMIT`] whether or not a length was declared.
fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<BytesMut, ApiError>> + 'static {
    let head = check_head(req);
    let mut payload = payload.take();
    async move {
        head?;
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| {
                ApiError::bad_request("bad_request", "the request body could not be read")
            })?;
            if body.len() + chunk.len() > BODY_LIMIT {
                return Err(ApiError::payload_too_large(BODY_LIMIT));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn check_head(req: &HttpRequest) -> Result<(), ApiError> {
    if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
        let is_json = content_type.to_str().is_ok_and(|value| {
            let essence = value.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json")
        });
        if !is_json {
            return Err(ApiError::client(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be application/json",
            ));
        }
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > BODY_LIMIT) {
        return Err(ApiError::payload_too_large(BODY_LIMIT));
    }
    Ok(())
}

/// Deserializes `body`: broken JSON is `400 malformed_json`; JSON of the wrong shape is `422`
/// naming the offending field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "malformed_json",
            "the request body is empty; a JSON object is expected",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.classify() != serde_json::error::Category::Data {
            return malformed(&inner);
        }
        let message = without_position(&inner.to_string());
        let field = match missing_field(&message) {
            Some(missing) => join_path(&path, missing),
            None if path == "." => String::new(),
            None => path,
        };
        ApiError::invalid_field(field, message)
    })?;
    deserializer.end().map_err(|err| malformed(&err))?;
    Ok(value)
}

fn malformed(err: &serde_json::Error) -> ApiError {
    ApiError::bad_request(
        "malformed_json",
        format!(
            "the request body is not valid JSON: {}",
            without_position(&err.to_string())
        ),
    )
}

/// serde_json appends " at line L column C"; the field path says more to an API client.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
}

fn join_path(parent: &str, field: &str) -> String {
    if parent.is_empty() || parent == "." {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

/// A path parameter that does not parse (`/user/not-a-uuid`) names nothing that exists: `404`.
pub fn path_error(_err: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::not_found("not_found", "no resource exists at this path").into()
}

/// A query string of the wrong shape is `422`.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    let message = match &err {
        actix_web::error::QueryPayloadError::Deserialize(inner) => inner.to_string(),
        _ => "the query string is invalid".to_owned(),
    };
    ApiError::invalid_field("query", message).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        price: Price,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Price {
        amount_cents: i64,
    }

    fn field_of(err: ApiError) -> (StatusCode, Option<String>) {
        let status = err.status();
        match err {
            ApiError::Validation { errors, .. } => {
                (status, errors.first().map(|e| e.field.clone()))
            }
            _ => (status, None),
        }
    }

    #[test]
    fn broken_json_is_a_bad_request() {
        for body in [
            &b"{"[..],
            b"{\"name\": }",
            b"",
            b"  ",
            br#"{"name": "a", "price": {"amount_cents": 1}} trailing"#,
        ] {
            let err = parse_json::<Body>(body).expect_err("must fail");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{body:?}");
            assert_eq!(err.code(), "malformed_json");
        }
    }

    #[test]
    fn wrong_shapes_name_the_field() {
        let err = parse_json::<Body>(br#"{"name": "a", "price": {"amount_cents": "x"}}"#)
            .expect_err("must fail");
        assert_eq!(
            field_of(err),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("price.amount_cents".into())
            )
        );
        let err = parse_json::<Body>(br#"{"price": {"amount_cents": 1}}"#).expect_err("must fail");
        assert_eq!(
            field_of(err),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("name".into()))
        );
        let err = parse_json::<Body>(br#"{"name": "a", "price": {}}"#).expect_err("must fail");
        assert_eq!(
            field_of(err),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("price.amount_cents".into())
            )
        );
        let err = parse_json::<Body>(b"[1, 2]").expect_err("must fail");
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
