//! Callers identified by signed tokens instead of API keys: JWTs of the identity providers tenants
//! trust, and Kubernetes ServiceAccount tokens; [`jwks`] keeps the providers' signing keys,
//! [`jwt`] checks a token and finds its tenant.

pub mod jwks;
pub mod jwt;

pub use self::jwks::KeyCache;
pub use self::jwt::{Audience, TokenVerifier, looks_like_jwt};
