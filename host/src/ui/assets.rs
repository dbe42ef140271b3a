//! The stylesheet and the script, compiled into the binary: no CDN, no build step.

const CSS: &str = include_str!("static/app.css");
const JS: &str = include_str!("static/app.js");

/// A static file by name: its content type and bytes.
pub fn get(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "app.css" => Some(("text/css; charset=utf-8", CSS)),
        "app.js" => Some(("text/javascript; charset=utf-8", JS)),
        _ => None,
    }
}
