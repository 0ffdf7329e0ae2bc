use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use uuid::Uuid;

use super::{Auth, Claims, TokenError};
use crate::domain::Role;
use crate::error::ApiError;

/// A caller who presented a valid, unexpired, unrevoked bearer token. Verifying costs no database
/// round trip. Whether the account is still active is for each handler to check where it matters.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub claims: Claims,
    /// The token as presented (echoed by `GET /auth/session`).
    pub token: String,
}

impl AuthUser {
    pub fn id(&self) -> Uuid {
        self.claims.sub
    }

    pub fn role(&self) -> Role {
        self.claims.role
    }

    /// Authenticates a raw token (from a header or a WebSocket query string).
    pub fn from_token(auth: &Auth, token: &str) -> Result<Self, ApiError> {
        let claims = auth.keys.verify(token).map_err(|err| match err {
            TokenError::Expired => ApiError::unauthorized("token_expired", "the token has expired"),
            TokenError::Invalid => ApiError::unauthorized("invalid_token", "the token is invalid"),
        })?;
        if !auth.revoked.is_current() {
            return Err(ApiError::Unavailable(anyhow::anyhow!(
                "revoked tokens are not current: the database has not answered lately"
            )));
        }
        if auth.revoked.is_revoked(claims.jti) {
            return Err(ApiError::unauthorized(
                "token_revoked",
                "the token has been revoked",
            ));
        }
        Ok(Self {
            claims,
            token: token.to_owned(),
        })
    }

    fn from_request_head(req: &HttpRequest) -> Result<Self, ApiError> {
        let auth = req.app_data::<web::Data<Auth>>().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("authentication is not configured"))
        })?;
        let value = req
            .headers()
            .get(header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing_token",
                    "an `Authorization: Bearer` token is required",
                )
            })?
            .to_str()
            .map_err(|_| ApiError::unauthorized("invalid_token", "the token is invalid"))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(ApiError::unauthorized(
                    "invalid_token",
                    "the Authorization header must be `Bearer <token>`",
                ));
            }
        };
        Self::from_token(auth, token)
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::from_request_head(req))
    }
}

/// An authenticated caller acting as a tutor; any other role is `403`.
#[derive(Debug, Clone)]
pub struct TutorUser(pub AuthUser);

/// An authenticated caller acting as a student; any other role is `403`.
#[derive(Debug, Clone)]
pub struct StudentUser(pub AuthUser);

fn with_role(req: &HttpRequest, role: Role) -> Result<AuthUser, ApiError> {
    let user = AuthUser::from_request_head(req)?;
    if user.role() == role {
        Ok(user)
    } else {
        Err(ApiError::forbidden(format!(
            "this route is for {}s",
            role.as_str()
        )))
    }
}

impl FromRequest for TutorUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(with_role(req, Role::Tutor).map(Self))
    }
}

impl FromRequest for StudentUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(with_role(req, Role::Student).map(Self))
    }
}

impl TutorUser {
    pub fn id(&self) -> Uuid {
        self.0.id()
    }
}

impl StudentUser {
    pub fn id(&self) -> Uuid {
        self.0.id()
    }
}
