//! `xp ui`: the run history in a browser, served by this binary with every asset embedded.
//!
//! The parts: [`server`] (router, shared state), [`auth`] (token, Host and Origin rules),
//! [`api`] (the JSON API), [`code`] and [`code_page`] (a run's code snapshot), [`pages`], [`run_page`] and [`other_pages`] (HTML), [`chart`] (SVG line charts),
//! [`downsample`] (min/max per pixel column), [`live`] (server-sent events), [`files`] (the
//! log and the artifacts, opened safely), [`html`] (the escaping writer), [`assets`] (CSS and
//! script). Nothing here runs unless `xp ui` does: the async runtime is built in [`serve`].

mod api;
mod assets;
mod auth;
mod chart;
mod code;
mod code_page;
mod data;
mod downsample;
mod files;
mod html;
mod live;
mod other_pages;
mod pages;
mod run_page;
mod server;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::paths::UserDirs;
use crate::project::Project;

pub use files::open_artifact;

/// Where to listen.
#[derive(Debug, Clone)]
pub struct Options {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum UiStartError {
    #[error("--host {0}: not an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1) or localhost")]
    BadHost(String),
    #[error("cannot listen on {address}: {source}{hint}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("the web view could not start: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
}

/// The address to print: the bound one, or this machine's name for a wildcard bind.
fn printable_host(ip: IpAddr) -> String {
    if ip.is_unspecified() {
        let mut name = [0u8; 256];
        // SAFETY: gethostname(2) writes at most the buffer's length.
        let ok = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0;
        let end = name.iter().position(|b| *b == 0).unwrap_or(0);
        if ok && end > 0 {
            return String::from_utf8_lossy(&name[..end]).into_owned();
        }
    }
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// Serves the project's history until the process is interrupted (Ctrl-C).
pub fn serve(project: &Project, dirs: &UserDirs, options: &Options) -> Result<(), UiStartError> {
    let host = match options.host.as_str() {
        "localhost" => "127.0.0.1",
        other => other.trim_matches(['[', ']']),
    };
    let ip: IpAddr = host.parse().map_err(|_| UiStartError::BadHost(options.host.clone()))?;
    let address = SocketAddr::new(ip, options.port);
    let listener = std::net::TcpListener::bind(address).map_err(|source| UiStartError::Bind {
        address,
        hint: if source.kind() == std::io::ErrorKind::AddrInUse {
            "; another program (or another xp ui) uses that port: pass --port N"
        } else {
            ""
        },
        source,
    })?;
    listener.set_nonblocking(true).map_err(UiStartError::Runtime)?;
    let port = listener.local_addr().map_err(UiStartError::Runtime)?.port();
    let token_required = !(ip == IpAddr::from([127, 0, 0, 1]) || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
    let access = auth::Access::new(token_required, port).map_err(UiStartError::Runtime)?;
    let url = if token_required {
        format!("http://{}:{port}/?token={}", printable_host(ip), access.token)
    } else {
        format!("http://{}:{port}/", printable_host(ip))
    };
    let state = Arc::new(server::AppState::new(project.clone(), dirs.clone(), access)?);

    // One thread serves requests; history reads go to a small blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .thread_keep_alive(std::time::Duration::from_secs(10))
        .build()
        .map_err(UiStartError::Runtime)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(UiStartError::Runtime)?;
        eprintln!(
            "xp ui: the history of {} (Ctrl-C stops it){}",
            project.root().display(),
            if token_required {
                "; every request needs the token in this URL"
            } else {
                ""
            }
        );
        // The URL alone on stdout, for scripts; a closed stdout is no reason to stop serving.
        {
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = writeln!(out, "{url}").and_then(|_| out.flush());
        }
        axum::serve(listener, server::router(state))
            .await
            .map_err(UiStartError::Runtime)
    })
}
