//! Where a request came from, for the audit trail: the client address and user agent.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use shared::audit::Actor;

use crate::auth::AuthUser;

/// The client address (the TCP peer) and its user agent.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Origin {
    /// The audit actor for a named caller.
    pub fn actor(&self, name: &str) -> Actor {
        Actor {
            name: name.to_owned(),
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
        }
    }

    /// The audit actor for an authenticated user.
    pub fn of(&self, user: &AuthUser) -> Actor {
        self.actor(user.name())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let source_ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(300).collect());
        Ok(Self { source_ip, user_agent })
    }
}
