//! The police API's routes in one table (method, path template), the path
//! matcher the router and the metrics labels use, and the OpenAPI document
//! served at `GET /v1/openapi.json` (`docs/openapi.yaml` as JSON).

/// Every route of the police API as (method, path template), `{x}` standing
/// for one path segment. The router dispatches only these, and a test holds
/// `docs/openapi.yaml` to exactly this list, both ways.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/notifications"),
    ("GET", "/v1/notifications/{receipt_id}"),
    ("POST", "/v1/notifications/{receipt_id}/withdraw"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/v1/openapi.json"),
];

/// This API's OpenAPI 3.1 description, as served at `GET /v1/openapi.json`:
/// `docs/openapi.yaml` as JSON (a test keeps the two the same).
pub const OPENAPI_JSON: &str = include_str!("../../docs/openapi.json");

/// The template in [`ROUTES`] a path matches, and the segments that stood
/// for its `{parameters}`; `None` for a path no route has.
pub fn match_route(path: &str) -> Option<(&'static str, Vec<&str>)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    ROUTES.iter().map(|(_, t)| *t).find_map(|template| {
        let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
        if parts.len() != segs.len() {
            return None;
        }
        let mut params = Vec::new();
        for (part, seg) in parts.iter().zip(&segs) {
            if part.starts_with('{') {
                params.push(*seg);
            } else if part != seg {
                return None;
            }
        }
        Some((template, params))
    })
}

/// A label for logs and metrics that never contains path parameters.
pub(crate) fn route_name(path: &str) -> &'static str {
    match match_route(path).map(|(t, _)| t) {
        Some("/healthz") => "healthz",
        Some("/readyz") => "readyz",
        Some("/v1/notifications") => "notifications",
        Some("/v1/notifications/{receipt_id}") => "notification_status",
        Some("/v1/notifications/{receipt_id}/withdraw") => "withdraw",
        Some("/v1/openapi.json") => "openapi",
        _ => "unknown",
    }
}
