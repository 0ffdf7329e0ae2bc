//! Who is calling: JWT issue and verification, password hashing off the request threads,
//! token revocation shared by every server node, and the extractors handlers use.

mod extract;
mod hasher;
mod jwt;
mod revocation;

pub use extract::{AuthUser, StudentUser, TutorUser};
pub use hasher::{HasherBusy, PasswordHasher};
pub use jwt::{Claims, IssuedToken, TokenError, TokenKeys};
pub use revocation::RevokedTokens;

use std::sync::Arc;

/// The authentication services, shared by every worker (one per application).
#[derive(Clone)]
pub struct Auth {
    pub keys: Arc<TokenKeys>,
    pub revoked: Arc<RevokedTokens>,
    pub hasher: PasswordHasher,
}
