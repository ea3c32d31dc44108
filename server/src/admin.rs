//! Who may change the server's behaviour: inject faults, set network conditions, switch the traffic
//! pattern, aim the lab at a proxied app. All are changed by the same people, so they share one check,
//! taken as an extractor ([`Admin`]): a handler that changes things asks for it, and cannot run for
//! anyone else.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;
use switchboard_shared::FaultAuth;

use crate::AppState;
use crate::error::AppError;
use crate::metering::ConnInfo;

/// Proof that the request's sender may change the server's behaviour (see [`authorize`]).
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, AppError> {
        let conn = parts.extensions.get::<ConnInfo>().cloned();
        authorize(state, conn, &parts.headers).map(|()| Admin)
    }
}

/// Lets the request through when the server's [`FaultAuth`] allows its sender: anyone on loopback, or
/// the bearer of the admin token; otherwise says why not.
fn authorize(
    state: &AppState,
    conn: Option<ConnInfo>,
    headers: &HeaderMap,
) -> Result<(), AppError> {
    match state.faults.auth {
        FaultAuth::Disabled => Err(AppError::Forbidden(
            "fault injection is off: this server listens beyond loopback and has no --admin-token"
                .into(),
        )),
        FaultAuth::Loopback => match conn {
            Some(conn) if conn.client.is_loopback() => Ok(()),
            _ => Err(AppError::Forbidden(
                "faults may only be injected from the server's own machine".into(),
            )),
        },
        FaultAuth::Token => {
            let expected = state.config.admin_token.as_deref().unwrap_or_default();
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::trim);
            match presented {
                // Compared in constant time, so the time taken does not tell how much of a guess was
                // right.
                Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
                Some(_) => Err(AppError::Forbidden("wrong admin token".into())),
                None => Err(AppError::Unauthorized(
                    "injecting faults needs Authorization: Bearer <admin token>".into(),
                )),
            }
        }
    }
}
