//! Who may talk to the web view. Bound to a loopback address, anyone on this machine may read,
//! but the `Host` header must name that address (a web page elsewhere cannot reach the server
//! through a rebound DNS name). Bound to any other address, every request needs the token
//! printed with the URL: `?token=` once (it becomes a cookie), or `Authorization: Bearer`.
//! Requests that change something (POST: cancel) always need the token in a header, which a
//! foreign page cannot set, and an `Origin` equal to the server's own.

use std::io::Read;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::server::AppState;

/// The header the page's script sends the token in.
pub const TOKEN_HEADER: &str = "x-xp-token";

pub struct Access {
    pub token: String,
    /// True when bound to an address other than 127.0.0.1 or ::1.
    pub token_required: bool,
    /// `Host` values accepted without a token (loopback binds).
    pub loopback_hosts: Vec<String>,
    pub cookie_name: String,
}

impl Access {
    pub fn new(token_required: bool, port: u16) -> std::io::Result<Access> {
        Ok(Access {
            token: new_token()?,
            token_required,
            loopback_hosts: vec![
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
            ],
            // Cookies do not tell ports apart: one name per port keeps two servers apart.
            cookie_name: format!("xp_token_{port}"),
        })
    }

    fn matches(&self, presented: &str) -> bool {
        // Compared in constant time: the time taken tells nothing about the token.
        let (a, b) = (presented.as_bytes(), self.token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    fn header_token_ok(&self, headers: &HeaderMap) -> bool {
        let explicit = headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        explicit.or(bearer).is_some_and(|t| self.matches(&t))
    }

    fn cookie_token_ok(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| name == self.cookie_name && self.matches(value))
    }
}

/// 32 random bytes from the kernel, as hex.
fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The query without its `token=` pair, and that token.
fn split_token(query: &str) -> (Option<&str>, String) {
    let mut token = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("token=") {
            Some(value) => token = Some(value),
            None => rest.push(pair),
        }
    }
    (token, rest.join("&"))
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_owned(),
    )
        .into_response()
}

pub async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let access = &state.access;
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !access.token_required && !access.loopback_hosts.contains(&host) {
        return refuse(
            StatusCode::FORBIDDEN,
            "xp ui answers only to the address it printed (the Host header names another)",
        );
    }
    let (query_token, rest) = split_token(request.uri().query().unwrap_or(""));
    let query_token_ok = query_token.is_some_and(|t| access.matches(t));
    let header_token_ok = access.header_token_ok(headers);
    let has_token = query_token_ok || header_token_ok || access.cookie_token_ok(headers);

    if request.method() != Method::GET && request.method() != Method::HEAD {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if origin != Some(format!("http://{host}").as_str()) {
            return refuse(
                StatusCode::FORBIDDEN,
                "this request must come from xp ui's own pages (Origin)",
            );
        }
        if !header_token_ok {
            return refuse(
                StatusCode::FORBIDDEN,
                "this request needs the token in the X-XP-Token header",
            );
        }
        return next.run(request).await;
    }
    if access.token_required && !has_token {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "xp ui needs its token: open the URL it printed (http://HOST:PORT/?token=...)",
        );
    }
    let cookie = query_token_ok.then(|| {
        format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            access.cookie_name, access.token
        )
    });
    // A page opened with ?token= reloads without it, so the token leaves the address bar
    // and the history; the cookie carries it from then on.
    if query_token_ok && !request.uri().path().starts_with("/api/") {
        let location = if rest.is_empty() {
            request.uri().path().to_owned()
        } else {
            format!("{}?{rest}", request.uri().path())
        };
        let mut response = StatusCode::SEE_OTHER.into_response();
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        if let Some(Ok(value)) = cookie.map(|c| HeaderValue::from_str(&c)) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        return response;
    }
    let mut response = next.run(request).await;
    if let Some(Ok(value)) = cookie.map(|c| HeaderValue::from_str(&c)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_compared_whole() {
        let access = Access::new(true, 5151).unwrap();
        assert_eq!(access.token.len(), 64);
        assert_ne!(access.token, Access::new(true, 5151).unwrap().token);
        assert!(access.matches(&access.token.clone()));
        assert!(!access.matches(&access.token[..63]));
        assert!(!access.matches(""));
    }

    #[test]
    fn the_token_is_taken_out_of_the_query() {
        assert_eq!(split_token("a=1&token=abc&b=2"), (Some("abc"), "a=1&b=2".to_owned()));
        assert_eq!(split_token(""), (None, String::new()));
    }
}
